"""Many queries in one process: `rerank batch` against the xargs loop and against one large query.

    python benchmarks/many_queries.py                 # 100 queries x 100 passages on the tiny 512-token model
    python benchmarks/many_queries.py --model DIR     # any model directory (e.g. benchmarks/work/model)

Three ways to score the same Q x D pairs, each a whole process (or processes) measured in this run:
  batch    one `rerank batch` process over Q request lines
  xargs    Q `rerank rerank -q ...` processes, one per query (the old README recipe)
  one      one `rerank score` process over the same Q x D pairs as a single query's documents
  fastembed   FastEmbed's `rerank_pairs` over the same pairs, one process (with --fastembed; its venv is
              made on first use, as bench.py does, and it loads a copy of the model without the stray
              `max_length`, so it sees the same tokens)
`batch` should be within about 10% of `one` (same pairs, same batcher) and far ahead of `xargs`
(one model load instead of Q). Passages are real prose (Python's docstrings), as in chunking.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chunking import cpu_name, prose_words  # noqa: E402
from peer_envs import fastembed_python, same_work_copy  # noqa: E402

DEFAULT_MODEL = HERE.parent / "tests" / "fixtures" / "tiny-bert-512"


def rerank(*args: str) -> float:
    """Wall seconds of one whole `rerank` process (output discarded)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rerank_cli", *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"rerank {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return time.perf_counter() - started


def write_requests(path: Path, queries: list[str], documents: list[list[str]]) -> Path:
    """A `rerank batch` request file: one {id, query, documents} line per query."""
    with path.open("w") as fh:
        for q, (query, docs) in enumerate(zip(queries, documents)):
            fh.write(json.dumps({"id": q, "query": query, "documents": docs}) + "\n")
    return path


def make_queries(count: int, words: list[str]) -> list[str]:
    """`count` distinct 8-word queries cut from real prose."""
    return [" ".join(words[(q * 101) % (len(words) - 8):][:8]) for q in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--docs", type=int, default=100, help="passages per query")
    parser.add_argument("--words", type=int, default=60, help="words per passage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fastembed", action="store_true", help="also time FastEmbed's rerank_pairs")
    args = parser.parse_args()

    words = prose_words()
    passage = lambda i: " ".join(words[(i * 37) % (len(words) - args.words):][: args.words])  # noqa: E731
    queries = make_queries(args.queries, words)
    common = ["-m", str(args.model), "--threads", str(args.threads), "--quiet", "--activation", "none"]
    pairs = args.queries * args.docs
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        requests = write_requests(work / "requests.jsonl", queries,
                                  [[passage(q * args.docs + d) for d in range(args.docs)] for q in range(args.queries)])
        per_query = []
        for q in range(args.queries):
            path = work / f"docs{q}.jsonl"
            path.write_text("".join(json.dumps({"text": passage(q * args.docs + d)}) + "\n" for d in range(args.docs)))
            per_query.append(path)
        everything = work / "all.jsonl"
        everything.write_text("".join(p.read_text() for p in per_query))

        rerank("score", "-q", "warm up", *common, str(per_query[0]))  # page cache and imports, not measured
        times = {
            "batch": rerank("batch", *common, str(requests)),
            "one": rerank("score", "-q", queries[0], *common, str(everything)),
            "xargs": sum(rerank("rerank", "-q", query, *common, str(path)) for query, path in zip(queries, per_query)),
        }
        python = fastembed_python() if args.fastembed else None
        if python is not None:
            model = args.model.resolve()
            if (model / "tokenizer_config.json").exists():
                model = same_work_copy(model, work)
            started = time.perf_counter()
            done = subprocess.run([python, str(HERE / "peers.py"), "fastembed-pairs", str(model), "", str(requests),
                                   str(work / "fastembed.out"), str(args.threads)], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"FastEmbed failed ({done.returncode}): {done.stderr[-1500:]}")
            times["fastembed"] = time.perf_counter() - started
    print(f"machine: {cpu_name()}, {args.threads} threads; model: {args.model.name}; "
          f"{args.queries} queries x {args.docs} passages of {args.words} words = {pairs} pairs")
    print("| way | seconds | pairs/s | batch is |")
    print("|---|---|---|---|")
    for name, label in (("batch", "`rerank batch`, one process"),
                        ("one", "`rerank score`, one query over the same pairs"),
                        ("xargs", f"{args.queries} `rerank rerank` processes (xargs)"),
                        ("fastembed", "FastEmbed `rerank_pairs`, one process")):
        if name not in times:
            continue
        ratio = "1.00" if name == "batch" else f"{times[name] / times['batch']:.2f}x faster"
        print(f"| {label} | {times[name]:.2f} | {pairs / times[name]:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
