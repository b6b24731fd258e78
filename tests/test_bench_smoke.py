"""The benchmark's --quick mode runs end to end (on the tiny test model, without peers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_bench_quick_smoke(tmp_path: Path) -> None:
    model = tmp_path / "model"
    subprocess.run(["cp", "-r", str(ROOT / "tests/fixtures/tiny-bert"), str(model)], check=True)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench.py"), "--quick", "--model", str(model),
                          "--peers", "none", "--memory-lines", "20000", "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| passages-200 | rerank fp32 |" in out.stdout and "| passages-200 | rerank int8 |" in out.stdout
    assert "of the roofline" in out.stdout and "Kendall tau" in out.stdout and "peak RSS" in out.stdout
    assert "machine: " in out.stdout and "roofline: " in out.stdout and "1 query x 1 document" in out.stdout
    assert "OpenVINO" in out.stdout + out.stderr  # its rows run, or say why they were skipped


def test_profile_graph_smoke(tmp_path: Path) -> None:
    # The graph profiler on the tiny model: both graphs the engine can load, per-operator times.
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(f'{{"text": "passage {i} about paris and the river seine"}}\n' for i in range(12)))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/profile_graph.py"), "--model",
                          str(ROOT / "tests/fixtures/tiny-bert"), "--docs", str(docs), "--variants", "ort,ort-saved",
                          "--repeats", "1", "--ops"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| ort |" in out.stdout and "| ort-saved |" in out.stdout and "of roofline" in out.stdout
    assert "MatMul" in out.stdout
