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
