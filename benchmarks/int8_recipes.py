"""int8 recipes for one model: each written as onnx/model_NAME.onnx, then timed warm against fp32.

Every recipe is onnxruntime's dynamic quantization (int8 weights, activations quantized at run time):

  local-int8     what `rerank models quantize` writes (rerank_cli/store/quantize.py)
  per-tensor     one scale per weight tensor instead of one per output channel
  reduce-range   7-bit weights (onnxruntime's advice for CPUs without VNNI)
  matmul-only    only the MatMuls: the embedding Gathers stay fp32
  all-matmuls    also the attention's activation x activation MatMuls (QK^T, PV), as optimum's
                 ORTQuantizer does (it leaves MatMulConstBOnly unset; sentence-transformers'
                 qint8_avx512_vnni file is made that way)

Quality: `python benchmarks/quality.py --skip-train --evaluate --extra-row NAME=--variant NAME ...`.
Speed: `python benchmarks/int8_recipes.py MODEL` prints warm pairs/s per file on passages-200.jsonl,
the files taking turns within each round, and each file's ratio to fp32 measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "work"
QUERY = "how are exceptions raised and handled in the standard library"


def recipes() -> dict[str, dict]:
    """quantize_dynamic keyword arguments per recipe (QInt8 weights in all)."""
    return {
        "per-tensor": {"per_channel": False},
        "reduce-range": {"per_channel": True, "reduce_range": True},
        "matmul-only": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
        "all-matmuls": {"per_channel": True, "extra_options": {"MatMulConstBOnly": False}},
    }


def build(model: Path, names: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in names:
        target = model / f"onnx/model_{name}.onnx"
        if not target.is_file():
            quantize_dynamic(model / "onnx/model.onnx", target, weight_type=QuantType.QInt8, **recipes()[name])
            print(f"wrote {target}", file=sys.stderr)


def time_warm(model: Path, files: list[str], rounds: int, passages: Path) -> None:
    from rerank_cli import Reranker

    docs = [json.loads(line)["text"] for line in passages.read_text().splitlines()]
    engines = {f: Reranker(model, onnx_file=f, threads=2) for f in files}
    for engine in engines.values():
        engine.score(QUERY, docs[:16])  # warm: session, arenas, the first batches
    seconds: dict[str, list[float]] = {f: [] for f in files}
    for _ in range(rounds):
        for f, engine in engines.items():
            start = time.perf_counter()
            engine.score(QUERY, docs)
            seconds[f].append(time.perf_counter() - start)
    base = statistics.median(seconds[files[0]])
    print(f"| file | warm pairs/s (median of {rounds}) | x {files[0]} |\n|---|---|---|")
    for f in files:
        median = statistics.median(seconds[f])
        print(f"| {f} | {len(docs) / median:.1f} | {base / median:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model directory with onnx/model.onnx")
    parser.add_argument("--recipe", action="append", choices=sorted(recipes()), help="default: all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passages", type=Path, default=WORK / "passages-200.jsonl")
    parser.add_argument("--no-timing", action="store_true", help="only write the files")
    args = parser.parse_args()
    names = args.recipe or sorted(recipes())
    build(args.model, names)
    if not args.no_timing:
        files = ["onnx/model.onnx", "onnx/model_local_int8.onnx", *(f"onnx/model_{n}.onnx" for n in names)]
        files += [f for f in ["onnx/model_qint8_avx512_vnni.onnx"] if (args.model / f).is_file()]
        time_warm(args.model, [f for f in files if (args.model / f).is_file()], args.rounds, args.passages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
