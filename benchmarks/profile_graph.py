"""Where warm fp32 time goes, and what onnxruntime's transformer fusions do to it, on this machine.

    python benchmarks/profile_graph.py                          # every variant, alternating, vs the roofline
    python benchmarks/profile_graph.py --variants ort,all --ops  # plus per-operator times of each

Each variant is the benchmark model's graph as onnxruntime runs it: `ort` the file as exported
(onnxruntime's own ORT_ENABLE_ALL optimizations only), `ort-saved` the graph engine/session.py caches,
the others after onnxruntime.transformers' optimizer (needs sympy) with one fusion family on
(`attention`, `mha`, `skiplayernorm`, `biasgelu`, `gelu`, `layernorm`, `embedlayernorm`) or all of its
defaults (`all`), `+`-joined for combinations (`skiplayernorm+biasgelu`). The batches are
the engine's own (length-sorted, 768-token budget) over benchmarks/work/passages-200.jsonl. Variants
run in alternation, repeated, and every figure is a ratio to the first variant or to the MatMul roofline
measured in the same run: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import QUERY  # noqa: E402
from measure import model_flops, roofline  # noqa: E402

FUSIONS = {
    "attention": {"enable_attention": True},
    "mha": {"enable_attention": True, "use_multi_head_attention": True},
    "skiplayernorm": {"enable_skip_layer_norm": True, "enable_bias_skip_layer_norm": True,
                      "enable_layer_norm": True},
    "biasgelu": {"enable_gelu": True, "enable_bias_gelu": True},
    "gelu": {"enable_gelu": True},
    "layernorm": {"enable_layer_norm": True},
    "embedlayernorm": {"enable_embed_layer_norm": True},
}


def fused_graph(onnx_path: Path, variant: str, out_dir: Path) -> Path:
    """The graph after onnxruntime.transformers' optimizer with only `variant`'s fusions on."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((onnx_path.parent.parent / "config.json").read_text())
    options = FusionOptions("bert")
    if variant != "all":
        for key, value in vars(options).items():
            if key.startswith("enable_") and isinstance(value, bool):
                setattr(options, key, False)
        for part in variant.split("+"):
            for key, value in FUSIONS[part].items():
                setattr(options, key, value)
    model = optimize_model(str(onnx_path), "bert", num_heads=config["num_attention_heads"],
                           hidden_size=config["hidden_size"], optimization_options=options, opt_level=0)
    out = out_dir / f"{variant}.onnx"
    model.save_model_to_file(str(out))
    ops = collections.Counter(node.op_type for node in model.model.graph.node)
    fused = {op: n for op, n in ops.items() if op in ("Attention", "MultiHeadAttention", "SkipLayerNormalization",
                                                     "BiasGelu", "Gelu", "FastGelu", "LayerNormalization",
                                                     "EmbedLayerNormalization")}
    print(f"{variant}: {fused}", file=sys.stderr)
    return out


def saved_graph(onnx_path: Path, out_dir: Path) -> Path:
    """The graph as onnxruntime's extended optimizations leave it, weights beside it: what engine/session.py caches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out_dir / "ort-saved.onnx")
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "ort-saved.onnx.data")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return out_dir / "ort-saved.onnx"


def graph_for(onnx_path: Path, variant: str, out_dir: Path) -> Path:
    if variant == "ort":
        return onnx_path
    if variant == "ort-saved":
        return saved_graph(onnx_path, out_dir)
    return fused_graph(onnx_path, variant, out_dir)


def batches(model_dir: Path, docs: list[str]) -> tuple[list[dict], list[int]]:
    """The padded batches the engine would run for these documents, and the unpadded pair lengths."""
    from rerank_cli.engine.batching import pad_batch, plan_batches
    from rerank_cli.engine.encoding import PairEncoder

    encoder = PairEncoder.from_dir(model_dir)
    encodings = encoder.encode([(QUERY, d) for d in docs])
    lengths = [len(e.ids) for e in encodings]
    return [pad_batch(encodings, rows, encoder.pad_id, True) for rows in plan_batches(lengths, 64, 768)], lengths


def session(path: Path, threads: int, profile: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_profiling = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_all(sess, feeds: list[dict]) -> float:
    names = {i.name for i in sess.get_inputs()}
    started = time.perf_counter()
    for feed in feeds:
        sess.run(None, {k: v for k, v in feed.items() if k in names})
    return time.perf_counter() - started


def op_times(path: Path, feeds: list[dict], threads: int) -> list[tuple[str, float]]:
    """Milliseconds per operator type over one pass of the batches (onnxruntime's profiler)."""
    sess = session(path, threads, profile=True)
    run_all(sess, feeds)
    trace_path = Path(sess.end_profiling())
    trace = json.loads(trace_path.read_text())
    trace_path.unlink()
    totals: dict[str, float] = collections.defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=HERE / "work/minilm-l6-ce")
    parser.add_argument("--docs", type=Path, default=HERE / "work/passages-200.jsonl")
    parser.add_argument("--variants", default="ort,all,attention,mha,skiplayernorm,biasgelu,skiplayernorm+biasgelu,"
                        "embedlayernorm")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (best and median reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ops", action="store_true", help="print per-operator times of each variant")
    args = parser.parse_args()

    docs = [json.loads(line)["text"] for line in args.docs.read_text().splitlines()]
    feeds, lengths = batches(args.model, docs)
    flops = model_flops(lengths, json.loads((args.model / "config.json").read_text()))
    tmp = Path(tempfile.mkdtemp(prefix="rerank-profile-"))
    onnx = args.model / "onnx/model.onnx"
    paths = {v: graph_for(onnx, v, tmp) for v in args.variants.split(",")}
    sessions = {v: session(p, args.threads) for v, p in paths.items()}
    for sess in sessions.values():
        run_all(sess, feeds[:2])
    peak = roofline(args.threads)
    times: dict[str, list[float]] = {v: [] for v in sessions}
    for _ in range(args.repeats):
        for variant, sess in sessions.items():
            times[variant].append(run_all(sess, feeds))
    peak = max(peak, roofline(args.threads))
    first = next(iter(times))
    print(f"roofline (MatMul 2048x384x1536, {args.threads} threads): {peak:.0f} GFLOP/s; "
          f"{len(docs)} pairs in {len(feeds)} batches, {flops / 1e9:.1f} useful GFLOP")
    print("| variant | best s | median s | pairs/s | GFLOP/s | of roofline | median time vs first |")
    print("|---|---|---|---|---|---|---|")
    for variant, ts in times.items():
        best, median = min(ts), statistics.median(ts)
        print(f"| {variant} | {best:.3f} | {median:.3f} | {len(docs) / best:.1f} | {flops / best / 1e9:.0f} | "
              f"{flops / best / 1e9 / peak:.0%} | {median / statistics.median(times[first]):.3f} |")
    if args.ops:
        for variant, path in paths.items():
            ops = op_times(path, feeds, args.threads)
            total = sum(ms for _, ms in ops)
            print(f"\n{variant}: {total:.0f} ms in operators; " + ", ".join(
                f"{op} {ms:.0f} ({ms / total:.0%})" for op, ms in ops[:12]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
