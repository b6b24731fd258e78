"""What --long-docs chunk costs: documents of 1x, 4x and 16x the model's limit, timed per document and per window.

    python benchmarks/chunking.py              # the benchmark model (benchmarks/build.py) if built, else tiny-bert-512
    python benchmarks/chunking.py --model DIR --docs 32 --repeats 3
    python benchmarks/chunking.py --quick      # seconds: tests/fixtures/tiny-bert (limit 40), few documents

Documents are real English prose (Python's own documentation topics) cut to exactly k times the
limit in tokens; a 1x document does not fit (the query and special tokens need room too), so it
takes two windows, the second short. Each size is scored by one `Reranker.score` call per repeat,
the best repeat kept; `truncate` on the same documents is the baseline (one pair per document
whatever its length). Chunking should cost time in proportion to the windows, or more exactly to
the tokens of the pairs it scores (a last window is often short): the last column stays flat.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_MODEL = HERE / "work" / "minilm-l6-ce"
TINY = ROOT / "tests" / "fixtures" / "tiny-bert-512"
QUICK = ROOT / "tests" / "fixtures" / "tiny-bert"
QUERY = "how do I catch an exception raised inside a generator"
SIZES = (1, 4, 16)


def prose_words() -> list[str]:
    """The words of Python's documentation topics, prose lines only (no code or tables)."""
    import pydoc_data.topics as topics

    words: list[str] = []
    for text in topics.topics.values():
        for line in text.splitlines():
            line = line.strip()
            if len(line) > 30 and sum(c.isalpha() or c == " " for c in line) / len(line) > 0.85:
                words.extend(line.split())
    return words


def documents(tokenizer, words: list[str], tokens: int, count: int) -> list[str]:
    """`count` documents of exactly `tokens` tokens (cut after a whole word), from consecutive prose."""
    docs: list[str] = []
    at = 0
    while len(docs) < count:
        take = max(tokens, 8)
        while True:
            text = " ".join(words[at:at + take])
            enc = tokenizer.encode(text, add_special_tokens=False)
            if len(enc.ids) >= tokens or at + take >= len(words):
                break
            take *= 2
        docs.append(text[:enc.offsets[min(tokens, len(enc.ids)) - 1][1]])
        at = (at + take) % max(len(words) - take, 1)
    return docs


def best_time(score, docs: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        score(QUERY, docs)
        times.append(time.perf_counter() - started)
    return min(times)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=32, help="documents per size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny-bert, 8 documents, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.model, args.docs, args.repeats = args.model or QUICK, 8, 1
    model = args.model or (BENCH_MODEL if (BENCH_MODEL / "onnx/model.onnx").is_file() else TINY)

    sys.path.insert(0, str(ROOT))
    from rerank_cli import Reranker

    # max_chunks far above 16x, so that no document is cut and every window is counted.
    chunked = Reranker(model, threads=args.threads, long_docs="chunk", max_chunks=10_000, activation="none")
    truncating = Reranker(model, threads=args.threads, activation="none")
    assert chunked.chunker is not None
    limit = chunked.max_length
    words = prose_words()
    warm = documents(chunked.chunker.tokenizer, words, limit, 4)
    chunked.score(QUERY, warm)
    truncating.score(QUERY, warm)

    print(f"model {model.name} (limit {limit} tokens), {args.threads} threads, {cpu_name()}, "
          f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start: the machine is shared); "
          f"{args.docs} documents per size, best of {args.repeats}; default overlap")
    print()
    print("| document | windows/doc | pair tokens/doc | truncate ms/doc | chunk ms/doc | chunk ms/window "
          "| chunk µs/pair token | µs/token vs 1x |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for k in SIZES:
        docs = documents(chunked.chunker.tokenizer, words, k * limit, args.docs)
        plan = chunked.chunker.plan([(QUERY, d) for d in docs])
        per_doc = len(plan.pairs) / len(docs)
        tokens = sum(len(e.ids) for e in chunked.encoder.encode(plan.pairs)) / len(docs)
        t_trunc = best_time(truncating.score, docs, args.repeats) / len(docs) * 1000
        t_chunk = best_time(chunked.score, docs, args.repeats) / len(docs) * 1000
        per_token = t_chunk / tokens * 1000
        base = base or per_token
        print(f"| {k}x ({k * limit} tokens) | {per_doc:.1f} | {tokens:.0f} | {t_trunc:.2f} | {t_chunk:.2f} | "
              f"{t_chunk / per_doc:.2f} | {per_token:.2f} | {per_token / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
