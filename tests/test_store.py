"""The model store and `rerank models`: dependencies, variants of local models, the fixes we suggest."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]

# Run in a fresh interpreter: modules the test process already imported would hide a missing dependency.
GATE = r"""
import importlib, importlib.abc, importlib.metadata as md, sys
from packaging.utils import canonicalize_name
allowed = set(sys.argv[2].split(","))
owners = md.packages_distributions()

class Gate(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        dists = owners.get(name.partition(".")[0])
        if dists and not any(canonicalize_name(d) in allowed for d in dists):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Gate())
failed = []
for module in sys.argv[1].split(","):
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failed.append(f"{module}: {exc}")
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def base_dependencies() -> set[str]:
    """The distributions a plain `pip install rerank-cli` brings: pyproject's dependencies and theirs."""
    tomllib = pytest.importorskip("tomllib")
    wanted = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            wanted += [Requirement(r) for r in md.requires(req.name) or []]
        except md.PackageNotFoundError:
            continue  # an optional platform dependency not installed here
    return seen


def imported_modules() -> set[str]:
    """Every module outside the standard library that rerank_cli imports, lazily inside functions included."""
    found: set[str] = set()
    for source in (ROOT / "rerank_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return {m for m in found if m.partition(".")[0] not in sys.stdlib_module_names | {"rerank_cli"}}


def test_every_module_the_code_imports_comes_with_the_base_dependencies() -> None:
    # `rerank models quantize` imports onnxruntime.quantization, which imports onnx: a plain install
    # must bring it. Imports from packages outside the base dependencies' closure are refused here.
    modules = imported_modules()
    assert "onnxruntime.quantization" in modules
    gate = subprocess.run([sys.executable, "-c", GATE, ",".join(sorted(modules)), ",".join(base_dependencies())],
                          capture_output=True, text=True, timeout=120)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert not re.search(r"\S", gate.stdout)
