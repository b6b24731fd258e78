"""Peer scorers run as whole processes by bench.py: `python peers.py NAME MODEL QUERY DOCS.jsonl OUT THREADS`.

Each loads the same model files, scores every document against the query and writes one score per
line, so bench.py can time the whole process and compare the scores with ours.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    name, model, query, docs_path, out, threads = sys.argv[1:7]
    if name == "fastembed-pairs":  # DOCS is a file of rerank requests; every (query, document) pair in one call
        return fastembed_pairs(model, docs_path, out, int(threads))
    with open(docs_path, encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line in fh]
    if name == "fastembed":
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        # specific_model_path loads our ONNX file under the registry entry of the same architecture.
        encoder = TextCrossEncoder("Xenova/ms-marco-MiniLM-L-6-v2", specific_model_path=model, threads=int(threads))
        scores = list(encoder.rerank(query, docs, batch_size=64))
    elif name == "sentence-transformers":
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(int(threads))
        encoder = CrossEncoder(model, device="cpu", activation_fn=torch.nn.Identity())
        scores = [float(s) for s in encoder.predict([(query, d) for d in docs], batch_size=32)]
    else:
        raise SystemExit(f"unknown peer {name}")
    with open(out, "w") as fh:
        fh.writelines(f"{s!r}\n" for s in scores)
    return 0


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
