"""The overhead of Ray on one machine: 2 actors x 1 thread against one process x 2 threads, same work.

    python benchmarks/ray_overhead.py                            # MiniLM benchmark model (benchmarks/build.py)
    python benchmarks/ray_overhead.py --model tests/fixtures/tiny-bert-512 --queries 64 --docs 50

Both sides answer the same Q request lines of D passages each with the code `rerank batch` runs, in this
process, and time it from the model load to the last answer:
  one process   `Reranker` with --threads threads (default 2) and `pipeline.answer_stream`
  ray           `rerank batch --ray`'s pipeline on a local cluster started once, before any timing (its
                start is reported on its own): --actors actors (default 2) x --threads / actors threads,
                each actor starting and loading the model within the timed run, as every run does
The two alternate, --repeats times each; the best of each is compared (the machine may be shared).
Requires the `ray` extra. Passages are real prose (Python's docstrings), as in chunking.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chunking import cpu_name, prose_words  # noqa: E402

from rerank_cli.engine.engine import Reranker  # noqa: E402
from rerank_cli.pipeline import answer_stream  # noqa: E402
from rerank_cli.records.requests import read_requests  # noqa: E402
from rerank_cli.scale.ray import answered, connected, in_order, request_lines  # noqa: E402

DEFAULT_MODEL = HERE / "work" / "minilm-l6-ce"


def one_process(model: Path, requests: Path, threads: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    engine = Reranker.from_dir(model, threads=threads, activation="none")
    answers = [a for group in answer_stream(engine, read_requests([str(requests)], "text")) for a in group]
    return time.perf_counter() - started, [s for a in answers for s, _ in a.ranked]


def on_ray(model: Path, requests: Path, actors: int, threads: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    ds = answered(request_lines([str(requests)]), {"model": str(model), "activation": "none"}, actors=actors,
                  threads=threads)
    answers = [a for group in in_order(ds) for a in group]
    return time.perf_counter() - started, [s for a in answers for s, _ in a.ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--queries", type=int, default=64, help="request lines (the actors share them 16 at a time)")
    parser.add_argument("--docs", type=int, default=8, help="passages per request")
    parser.add_argument("--words", type=int, default=150, help="words per passage")
    parser.add_argument("--threads", type=int, default=2, help="threads of the one process (= actors x threads each)")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (args.model / "tokenizer.json").exists():
        raise SystemExit(f"{args.model}: no model there (python benchmarks/build.py makes the MiniLM one)")

    words = prose_words()
    passage = lambda i: " ".join(words[(i * 37) % (len(words) - args.words):][: args.words])  # noqa: E731
    pairs = args.queries * args.docs
    per_actor = max(1, args.threads // args.actors)
    with tempfile.TemporaryDirectory() as tmp:
        requests = Path(tmp) / "requests.jsonl"
        requests.write_text("".join(json.dumps({"id": q, "query": " ".join(words[(q * 101) % 900:][:8]),
                                                "documents": [passage(q * args.docs + d) for d in range(args.docs)]})
                                    + "\n" for q in range(args.queries)))
        started = time.perf_counter()
        with connected(None):
            logging.getLogger("ray").setLevel(logging.CRITICAL)
            cluster = time.perf_counter() - started
            times: dict[str, list[float]] = {"one": [], "ray": []}
            scores: dict[str, list[float]] = {}
            for _ in range(args.repeats):  # alternate, so that a busy spell hits both sides alike
                seconds, scores["one"] = one_process(args.model, requests, args.threads)
                times["one"].append(seconds)
                seconds, scores["ray"] = on_ray(args.model, requests, args.actors, per_actor)
                times["ray"].append(seconds)
    one, ray = min(times["one"]), min(times["ray"])
    print(f"# {args.model.name}: {args.queries} requests x {args.docs} passages of {args.words} words = {pairs} pairs;"
          f" {cpu_name()}, {os.cpu_count()} CPUs; best of {args.repeats}, alternating")
    print(f"local Ray cluster start (once, not in the runs): {cluster:.1f} s")
    print(f"one process x {args.threads} threads: {pairs / one:.1f} pairs/s ({one:.2f} s; runs "
          f"{', '.join(f'{t:.2f}' for t in times['one'])})")
    print(f"ray, {args.actors} actors x {per_actor} thread(s): {pairs / ray:.1f} pairs/s ({ray:.2f} s; runs "
          f"{', '.join(f'{t:.2f}' for t in times['ray'])})")
    print(f"ray time / one-process time: {ray / one:.2f}; per core, one process: {pairs / one / args.threads:.1f} "
          "pairs/s")
    print(f"scores equal: {scores['one'] == scores['ray']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
