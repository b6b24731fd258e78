"""What bench.py measures with: whole processes (wall time, own peak RSS), the MatMul roofline, model
FLOPs, rank agreement and the machine's description."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


class ProcessFailed(RuntimeError):
    """A measured process exited non-zero; the message carries its command and stderr's tail."""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, whole process
    rss_mb: float  # the process's own peak RSS


def run_process(cmd: list[str], stdout_path: Path | None = None) -> Run:
    """Run a whole process under peak_rss.py; raise ProcessFailed if it fails."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / "peak_rss.py"), rss.name, *cmd], stdout=out,
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - started
        if stdout_path:
            out.close()
        if proc.returncode != 0:
            raise ProcessFailed(f"{' '.join(cmd[:6])}... failed ({proc.returncode}):\n"
                                f"{proc.stderr.decode(errors='replace')[-1500:]}")
        return Run(wall, int(Path(rss.name).read_text()) / 1024)


def read_scores(path: Path) -> np.ndarray:
    """Scores from our JSONL output or a peer's one-float-per-line file."""
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


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a between two score vectors (O(n^2), fine for a thousand documents)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    n = len(a)
    return float((da * db).sum() / (n * (n - 1)))


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> int:
    return len(set(np.argsort(-a, kind="stable")[:k]) & set(np.argsort(-b, kind="stable")[:k]))


def lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def machine() -> str:
    """CPU model, cores, the vector/matrix flags that decide int8 and bf16 speed, and memory (from lscpu)."""
    info = lscpu()
    flags = set(info.get("Flags", "").split())
    have = [f for f in CPU_FLAGS if f in flags] or ["flags unknown"]
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0.0)
    return (f"{info.get('Model name', platform.processor() or platform.machine())}, {info.get('CPU(s)', '?')} CPUs, "
            f"{' '.join(have)}, {mem:.0f} GiB")


def mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 2**20
    return 0.0
