"""Peer scorers run as whole processes by bench.py: `python peers.py NAME MODEL QUERY DOCS.jsonl OUT THREADS [ARG]`.

Each loads the same model files, scores every document against the query and writes one score per
line (a logit, as `rerank --activation none` gives), so bench.py can time the whole process and
compare the scores with ours. Each runs in its own venv (benchmarks/peer_envs.py), so this file
imports nothing heavy at the top.
"""

from __future__ import annotations

import json
import math
import sys


def main() -> int:
    name, model, query, docs_path, out, threads = sys.argv[1:7]
    extra = sys.argv[7] if len(sys.argv) > 7 else ""
    if name == "fastembed-pairs":  # DOCS is a file of rerank requests; every (query, document) pair in one call
        return fastembed_pairs(model, docs_path, out, int(threads))
    with open(docs_path, encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line in fh]
    scorers = {"fastembed": fastembed, "sentence-transformers": sentence_transformers,
               "sentence-transformers-onnx": sentence_transformers_onnx, "flashrank": flashrank}
    if name not in scorers:
        raise SystemExit(f"unknown peer {name}")
    scores = scorers[name](model, query, docs, int(threads), extra)
    with open(out, "w") as fh:
        fh.writelines(f"{s!r}\n" for s in scores)
    return 0


def fastembed(model: str, query: str, docs: list[str], threads: int, _: str) -> list[float]:
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    # specific_model_path loads our ONNX file under the registry entry of the same architecture.
    encoder = TextCrossEncoder("Xenova/ms-marco-MiniLM-L-6-v2", specific_model_path=model, threads=threads)
    return [float(s) for s in encoder.rerank(query, docs, batch_size=64)]


def sentence_transformers(model: str, query: str, docs: list[str], threads: int, _: str) -> list[float]:
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(threads)
    encoder = CrossEncoder(model, device="cpu", activation_fn=torch.nn.Identity())
    return [float(s) for s in encoder.predict([(query, d) for d in docs], batch_size=32)]


def sentence_transformers_onnx(model: str, query: str, docs: list[str], threads: int, _: str) -> list[float]:
    import onnxruntime as ort
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # file_name names the fp32 graph: bench.py's quantized file sits beside it in onnx/.
    encoder = CrossEncoder(model, device="cpu", backend="onnx", activation_fn=torch.nn.Identity(),
                           model_kwargs={"file_name": "onnx/model.onnx", "provider": "CPUExecutionProvider",
                                         "session_options": options})
    return [float(s) for s in encoder.predict([(query, d) for d in docs], batch_size=32)]


def flashrank(cache: str, query: str, docs: list[str], threads: int, extra: str) -> list[float]:
    """FlashRank's Ranker over a cache dir laid out by peer_envs.flashrank_cache; EXTRA is
    `NAME[,max_length[,chunk]]`. It scores each call's passages in one batch, so `chunk` splits the
    documents into calls of that many (FlashRank's memory grows with the batch)."""
    import os

    from flashrank import Ranker, RerankRequest

    name, *rest = extra.split(",")
    max_length = int(rest[0]) if rest and rest[0] else None
    chunk = int(rest[1]) if len(rest) > 1 else len(docs)
    if (os.cpu_count() or 1) > threads:  # FlashRank has no thread option: bound it to `threads` cores
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    ranker = Ranker(model_name=name, cache_dir=cache, log_level="WARNING",
                    **({"max_length": max_length} if max_length else {}))
    scores = [0.0] * len(docs)
    for start in range(0, len(docs), chunk):
        passages = [{"id": i, "text": docs[i]} for i in range(start, min(start + chunk, len(docs)))]
        for passage in ranker.rerank(RerankRequest(query=query, passages=passages)):
            p = float(passage["score"])  # FlashRank returns sigmoid(logit), sorted: undo both
            scores[passage["id"]] = math.log(p) - math.log1p(-p)
    return scores


def fastembed_pairs(model: str, requests_path: str, out: str, threads: int) -> int:
    """FastEmbed's answer to many queries: `rerank_pairs` over every request's (query, document) pairs."""
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    with open(requests_path, encoding="utf-8") as fh:
        requests = [json.loads(line) for line in fh]
    pairs = [(r["query"], d) for r in requests for d in r["documents"]]
    encoder = TextCrossEncoder("Xenova/ms-marco-MiniLM-L-6-v2", specific_model_path=model, threads=threads)
    scores = list(encoder.rerank_pairs(pairs, batch_size=64))
    with open(out, "w") as fh:
        fh.writelines(f"{s!r}\n" for s in scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
