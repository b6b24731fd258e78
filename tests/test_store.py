"""The model store and `rerank models`: dependencies, variants of local models, the fixes we suggest."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import PAIRS
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from rerank_cli.cli.app import app

ROOT = Path(__file__).parents[1]
runner = CliRunner()

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
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the installed metadata, written from pyproject at install time
        base = [r for r in md.requires("rerank-cli") or [] if "extra ==" not in r]
    else:
        base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [Requirement(r) for r in base]
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


# Optional extras, imported only behind a guard that names the install (tests/test_openvino.py and
# tests/test_ray.py check it): openvino; ray, whose `data` extra brings pyarrow.
EXTRAS = {"openvino", "ray", "pyarrow"}


def imported_modules() -> set[str]:
    """Every module outside the standard library that rerank_cli imports, lazily inside functions included."""
    found: set[str] = set()
    for source in (ROOT / "rerank_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return {m for m in found if m.partition(".")[0] not in sys.stdlib_module_names | {"rerank_cli"} | EXTRAS}


def test_every_module_the_code_imports_comes_with_the_base_dependencies() -> None:
    # `rerank models quantize` imports onnxruntime.quantization, which imports onnx: a plain install
    # must bring it. Imports from packages outside the base dependencies' closure are refused here.
    modules = imported_modules()
    assert "onnxruntime.quantization" in modules
    gate = subprocess.run([sys.executable, "-c", GATE, ",".join(sorted(modules)), ",".join(base_dependencies())],
                          capture_output=True, text=True, timeout=120)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert not re.search(r"\S", gate.stdout)


# ---- the CLI: local variants, model arguments, help, completion ------------------------------------------

DOCS = "".join(orjson.dumps({"text": d}).decode() + "\n" for q, d in PAIRS if q == PAIRS[0][0])


def scores(*args: str) -> list[float]:
    result = runner.invoke(app, ["score", "-q", PAIRS[0][0], *args], input=DOCS)
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line)["score"] for line in result.stdout.splitlines()]


def test_variant_of_a_local_directory_picks_its_file_or_fails_naming_the_files(model_copy) -> None:
    model = str(model_copy())
    quantized = scores("-m", model, "--variant", "quantized")
    assert quantized == scores("-m", model, "--onnx-file", "onnx/model_quantized.onnx")
    assert quantized != scores("-m", model)
    missing = runner.invoke(app, ["score", "-q", "q", "-m", model, "--variant", "nonexistent"], input="x\n")
    assert missing.exit_code == 69 and missing.stdout == ""
    assert "onnx/model_nonexistent.onnx" in missing.stderr
    assert "onnx/model.onnx, onnx/model_quantized.onnx" in missing.stderr and missing.stderr.count("\n") == 1
    both = runner.invoke(app, ["score", "-q", "q", "-m", model, "--variant", "quantized", "--onnx-file",
                               "onnx/model.onnx"], input="x\n")
    assert both.exit_code == 2 and both.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [["score", "-q", "q", "-m", ""], ["rerank", "-q", "q", "-m", " "],
                                  ["models", "pull", ""], ["models", "path", ""], ["models", "quantize", ""]])
def test_an_empty_model_name_is_a_usage_error(args: list[str]) -> None:
    result = runner.invoke(app, args, input="x\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("rerank: error: the model name is empty") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(("model", "flags", "says"), [
    ("local", ["--variant", ""], "the variant is empty"), ("local", ["--onnx-file", " "], "the ONNX file is empty"),
    ("org/tiny", ["--revision", ""], "the revision is empty"), ("org/tiny", ["--variant", ""], "the variant is empty"),
    ("local", ["--revision", "v2"], "a revision applies to hub models only"),
])
def test_choices_that_would_be_silently_ignored_are_usage_errors(model_copy, model: str, flags: list[str],
                                                                 says: str) -> None:
    where = str(model_copy()) if model == "local" else model
    result = runner.invoke(app, ["score", "-q", "q", "-m", where, *flags], input="x\n")
    assert result.exit_code == 2 and says in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_file_given_as_the_model_says_so_and_names_its_directory(model_copy) -> None:
    model = model_copy()
    for path, fix in ((model / "config.json", f"use the directory holding it: {model}"),
                      (model / "onnx/model.onnx", f"-m {model} --onnx-file onnx/model.onnx")):
        result = runner.invoke(app, ["score", "-q", "q", "-m", str(path)], input="x\n")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "is a file, not a model directory" in result.stderr and fix in result.stderr


@pytest.mark.parametrize("command", [[], ["score"], ["rerank"], ["models"], ["models", "list"], ["models", "pull"],
                                     ["models", "path"], ["models", "rm"], ["models", "quantize"]])
def test_help_shows_every_command_and_no_python_types(command: list[str]) -> None:
    text = runner.invoke(app, [*command, "--help"]).stdout
    assert not re.search(r"<(str|int|list\[\w+\]|int range)>|\\b|\x08", text), text
    if command == ["models"]:
        assert all(name in text for name in ("list", "pull", "path", "rm", "quantize"))
        assert "quantize" in text.split("Commands:")[0]  # the group's own summary names it too


@pytest.mark.parametrize(("words", "expected"), [
    ("rerank models pull Xenova/ms-marco-MiniLM-L-1", {"Xenova/ms-marco-MiniLM-L-12-v2"}),
    ("rerank models quantize BAAI/", {"BAAI/bge-reranker-base", "BAAI/bge-reranker-large"}),
    ("rerank models rm mixed", {"mixedbread-ai/mxbai-rerank-xsmall-v1", "mixedbread-ai/mxbai-rerank-base-v1"}),
])
def test_models_commands_complete_model_names(words: str, expected: set[str]) -> None:
    # What the installed bash script runs at each <TAB>: a real process, as the shell would start it.
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1),
           "_RERANK_COMPLETE": "complete_bash"}
    out = subprocess.run([sys.executable, "-m", "rerank_cli"], env=env, capture_output=True, text=True, timeout=60)
    assert set(out.stdout.split()) == expected


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(("args", "stdout"), [(["list"], "full"), (["list", "--json"], "closed")])
def test_models_list_to_a_full_or_closed_stdout_is_exit_74(args: list[str], stdout: str) -> None:
    # A real process: only real file descriptors can be full (/dev/full) or closed at start (`>&-`).
    with open("/dev/full", "wb") as full:
        out = subprocess.run([sys.executable, "-m", "rerank_cli", "models", *args], capture_output=False,
                             stdout=full if stdout == "full" else None, stderr=subprocess.PIPE, text=True,
                             preexec_fn=(lambda: os.close(1)) if stdout == "closed" else None, timeout=60)
    assert out.returncode == 74, out.stderr
    assert out.stderr.startswith("rerank: error: cannot write output") and out.stderr.count("\n") == 1


def test_models_commands_on_a_local_directory(tmp_path: Path) -> None:
    # A stranger's test: `models path DIR` looked DIR up as a hub repo id, `models pull DIR` tried the Hub.
    from conftest import BERT

    model = tmp_path / "model"
    shutil.copytree(BERT, model)
    assert runner.invoke(app, ["models", "quantize", str(model), "--quiet"]).exit_code == 0
    path = runner.invoke(app, ["models", "path", str(model), "--variant", "local-int8"])
    assert path.exit_code == 0 and path.stdout.strip() == str(model)
    for verb in ("pull", "rm"):
        result = runner.invoke(app, ["models", verb, str(model)])
        assert result.exit_code == 2 and "is a local model directory" in result.stderr
    assert model.is_dir()


def test_local_int8_quantizes_weights_per_channel_and_keeps_attention_fp32(model_copy) -> None:
    # The recipe measured in benchmarks/int8_recipes.py: int8 weights with one scale per output channel;
    # the attention's activation x activation MatMuls (QK^T, PV) stay fp32, unlike optimum's recipe.
    import onnx

    model = model_copy()
    assert runner.invoke(app, ["models", "quantize", str(model), "--quiet"]).exit_code == 0
    graph = onnx.load(str(model / "onnx/model_local_int8.onnx")).graph
    weights = {i.name: i for i in graph.initializer}
    integer = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert integer and all(n.input[1] in weights for n in integer)
    for node in integer:  # one scale per output channel (the classifier has one), not one per tensor
        scale = weights[node.input[1].removesuffix("_quantized") + "_scale"]
        assert list(scale.dims) == [weights[node.input[1]].dims[1]]
    float_matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    assert float_matmuls and not any(i in weights for n in float_matmuls for i in n.input)
