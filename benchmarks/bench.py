"""Benchmark rerank against FastEmbed and sentence-transformers on the same model, inputs and threads.

    python benchmarks/bench.py            # full run (needs the `bench` extra and benchmarks/build.py's model)
    python benchmarks/bench.py --quick    # under two minutes: 200 passages, fewer repeats

Every figure is measured in this run; speeds are also given as ratios to peers measured in the same
run, because these machines are shared and noisy. Peers missing from the environment are skipped.
FastEmbed pins huggingface_hub<2, so it runs from its own venv (benchmarks/work/fastembed-venv, made
on first use with `--system-site-packages`, so it shares this onnxruntime build).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
QUERY = "what is the difference between a list and a tuple"
sys.path.insert(0, str(HERE))


def run_process(cmd: list[str], stdout_path: Path | None = None) -> tuple[float, float]:
    """Run a whole process; return (wall seconds, its own peak RSS in MB, measured by peak_rss.py)."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / "peak_rss.py"), rss.name, *cmd], stdout=out,
                              stderr=subprocess.PIPE)
        wall = time.perf_counter() - started
        if stdout_path:
            out.close()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:6])}... failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
        return wall, int(Path(rss.name).read_text()) / 1024


def rerank_cmd(model: Path, docs: Path, *extra: str, command: str = "score") -> list[str]:
    return [sys.executable, "-m", "rerank_cli", command, "-m", str(model), "-q", QUERY, str(docs),
            "--threads", "2", "--quiet", "--activation", "none", *extra]  # logits, as the peers return


def fastembed_python() -> str | None:
    venv = WORK / "fastembed-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print("setting up the FastEmbed venv (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "fastembed"], capture_output=True)
        if done.returncode != 0:
            return None
    return str(python)


def peers_available(wanted: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    if "sentence-transformers" in wanted:
        try:
            import sentence_transformers  # noqa: F401
            import torch  # noqa: F401

            found["sentence-transformers"] = sys.executable
        except ImportError:
            print("sentence-transformers/torch not installed: peer skipped", file=sys.stderr)
    if "fastembed" in wanted:
        python = fastembed_python()
        if python:
            found["fastembed"] = python
        else:
            print("fastembed could not be installed: peer skipped", file=sys.stderr)
    return found


def same_work_copy(model: Path, tmp: Path) -> Path:
    """A copy of the model whose tokenizer_config.json has no stray `max_length` (files symlinked)."""
    copy = tmp / "same-work-model"
    if not copy.exists():
        for item in model.rglob("*"):
            target = copy / item.relative_to(model)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif item.name != "tokenizer_config.json":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(item)
        config = json.loads((model / "tokenizer_config.json").read_text())
        config.pop("max_length", None)
        (copy / "tokenizer_config.json").write_text(json.dumps(config))
    return copy


def read_scores(path: Path) -> np.ndarray:
    text = path.read_text().splitlines()
    if text and text[0].startswith("{"):
        return np.array([json.loads(line)["score"] for line in text])
    return np.array([float(x) for x in text])


def roofline(threads: int = 2) -> float:
    """GFLOP/s of one onnxruntime MatMul of BERT-FFN shape (2048x384 by 384x1536): the practical peak."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = 2048, 384, 1536
    weight = numpy_helper.from_array(np.random.default_rng(0).random((k, n), dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["Y"])], "mm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).random((m, k), dtype=np.float32)
    for _ in range(5):
        session.run(None, {"A": a})
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(10):
            session.run(None, {"A": a})
        best = max(best, 2 * m * k * n * 10 / (time.perf_counter() - started) / 1e9)
    return best


def model_flops(lengths: list[int], config: dict) -> float:
    """FLOPs of a BERT encoder over unpadded pairs: projections, FFN and attention, per layer."""
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return float(sum(layers * (2 * h * (4 * h + 2 * inter) * n + 4 * h * n * n) for n in lengths))


def engine_rate(model: Path, docs: list[str], variant: str | None, repeats: int) -> tuple[float, float]:
    """Steady-state pairs/s and GFLOP/s of our engine in this process (model loaded, warm)."""
    from rerank_cli import Reranker

    engine = Reranker(model, threads=2, variant=variant)
    lengths = [len(e.ids) for e in engine.encoder.encode([(QUERY, d) for d in docs])]
    config = json.loads((model / "config.json").read_text())
    engine.score(QUERY, docs[:16])
    best = min(_timed(lambda: engine.score(QUERY, docs)) for _ in range(repeats))
    return len(docs) / best, model_flops(lengths, config) / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a between two score vectors (O(n^2), fine for a thousand documents)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    n = len(a)
    return float((da * db).sum() / (n * (n - 1)))


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> int:
    return len(set(np.argsort(-a, kind="stable")[:k]) & set(np.argsort(-b, kind="stable")[:k]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 passages only, fewer repeats (< 2 min)")
    parser.add_argument("--model", type=Path, help="model directory [default: build benchmarks/work/minilm-l6-ce]")
    parser.add_argument("--peers", default="fastembed,sentence-transformers", help="comma list, or none")
    parser.add_argument("--memory-lines", type=int, default=None, help="JSONL lines for the memory test")
    parser.add_argument("--work", type=Path, default=WORK, help="where corpora and the model are kept")
    args = parser.parse_args()

    import build

    build.WORK = args.work
    args.work.mkdir(parents=True, exist_ok=True)

    model = args.model or build.build_model(args.work / "minilm-l6-ce")
    corpora = [("passages-200", 150, 200)] + ([] if args.quick else [("passages-1000", 150, 1000)])
    paths = {name: build.write_corpus(name, words, count) for name, words, count in corpora}
    snippets = build.write_corpus("snippets-100", 60, 100)
    repeats = 2 if args.quick else 3  # best of N: a single run on a shared machine is too noisy
    wanted = [] if args.peers == "none" else args.peers.split(",")
    peers = peers_available(wanted)
    subprocess.run([sys.executable, "-m", "rerank_cli", "models", "quantize", str(model), "--quiet"], check=True)

    rows: list[tuple[str, ...]] = []
    tmp = Path(tempfile.mkdtemp(prefix="rerank-bench-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}; model {model}", file=sys.stderr)
    agreement: list[str] = []
    for name, path in paths.items():
        n = len(path.read_text().splitlines())
        results: dict[str, tuple[float, float, np.ndarray]] = {}
        for label, cmd in (("rerank fp32", rerank_cmd(model, path)),
                           ("rerank int8", rerank_cmd(model, path, "--variant", "local-int8"))):
            best = min((run_process(cmd, tmp / "out.jsonl") for _ in range(repeats)), key=lambda r: r[0])
            results[label] = (*best, read_scores(tmp / "out.jsonl"))
        for peer, python in peers.items():
            # FastEmbed honours tokenizer_config.json's stray `max_length` (128 here) and so scores
            # truncated documents; the "same work" row runs it on a copy without that key.
            variants = [(peer, model)] + ([("fastembed (same work)", same_work_copy(model, tmp))]
                                          if peer == "fastembed" else [])
            for label, directory in variants:
                cmd = [python, str(HERE / "peers.py"), peer, str(directory), QUERY, str(path), str(tmp / "peer.txt"),
                       "2"]
                wall, rss = run_process(cmd)
                results[label] = (wall, rss, read_scores(tmp / "peer.txt"))
        ours = results["rerank fp32"]
        for label, (wall, rss, scores) in results.items():
            diff = float(np.abs(scores - ours[2]).max())
            rows.append((name, label, f"{n / wall:.1f}", f"{ours[0] and wall / ours[0]:.2f}x" if label != "rerank fp32"
                         else "1.00x", f"{rss:.0f}", f"{diff:.1e}"))
        int8 = results["rerank int8"][2]
        agreement.append(f"{name}: int8 vs fp32 top-10 overlap {top_overlap(ours[2], int8)}/10, "
                         f"Kendall tau {kendall_tau(ours[2], int8):.3f}")

    lines = paths["passages-200"].read_text().splitlines(keepends=True)
    docs = [json.loads(line)["text"] for line in lines]
    peak = roofline()
    fp32_rate, fp32_flops = engine_rate(model, docs, None, repeats + 1)
    int8_rate, _ = engine_rate(model, docs, "local-int8", repeats + 1)

    latency = []
    first100 = tmp / "passages-100.jsonl"
    first100.write_text("".join(lines[:100]))
    for label, docs_path in (("100 snippets (~60 words)", snippets), ("100 passages (~150 words)", first100)):
        for variant in (None, "local-int8"):
            extra = ("--variant", variant) if variant else ()
            cmd = rerank_cmd(model, docs_path, *extra, "-k", "10", command="rerank")
            wall = min(run_process(cmd)[0] for _ in range(repeats + 2))
            latency.append(f"{label}, {'int8' if variant else 'fp32'}: {wall:.2f} s")
    help_time = min(run_process([sys.executable, "-m", "rerank_cli", "--help"])[0] for _ in range(5))

    memory = []
    tiny = ROOT / "tests/fixtures/tiny-bert"
    big_lines = args.memory_lines or (100_000 if args.quick else 1_000_000)
    for lines in (10_000, big_lines):
        big = tmp / f"lines-{lines}.jsonl"
        with open(big, "w") as fh:
            for i in range(lines):
                fh.write(json.dumps({"id": i, "text": f"document number {i} about paris and its river"}) + "\n")
        wall, rss = run_process(rerank_cmd(tiny, big, "--format", "jsonl"), tmp / "big.jsonl")
        memory.append(f"{lines:,} lines (tiny test model): peak RSS {rss:.0f} MB, {wall:.1f} s")
        big.unlink()

    print("\n| corpus | scorer | pairs/s (whole process) | time vs rerank fp32 | peak RSS MB | max |score - ours| |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nroofline (onnxruntime MatMul 2048x384x1536, 2 threads): {peak:.0f} GFLOP/s")
    print(f"rerank fp32 in-process, warm: {fp32_rate:.1f} pairs/s, {fp32_flops:.0f} GFLOP/s = "
          f"{fp32_flops / peak:.0%} of the roofline")
    print(f"rerank int8 in-process, warm: {int8_rate:.1f} pairs/s = {int8_rate / fp32_rate:.2f}x fp32")
    for line in agreement:
        print(line)
    for line in latency:
        print(f"latency, whole `rerank rerank` process, {line}")
    print(f"`rerank --help`: {help_time:.2f} s")
    for line in memory:
        print(f"memory, `rerank score`, {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
