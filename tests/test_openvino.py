"""--provider openvino (the `openvino` runtime) and --precision: parity with PyTorch, bf16's cost, the errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BERT, FIXTURES, PAIRS, REFERENCES, TOLERANCE, XLMR
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app
from rerank_cli.engine.batching import pad_batch
from rerank_cli.engine.openvino import installed
from rerank_cli.errors import ModelUnavailable, UsageError

needs_openvino = pytest.mark.skipif(not installed(), reason="the openvino package is not installed "
                                    "(pip install 'rerank-cli[openvino]'; the test extra has it)")
runner = CliRunner()
QUERY = PAIRS[0][0]


@pytest.fixture(autouse=True)
def compiled_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OpenVINO's compiled-model cache goes under RERANK_HOME: keep it in tmp_path."""
    monkeypatch.setenv("RERANK_HOME", str(tmp_path / "rerank-home"))
    return tmp_path / "rerank-home" / "openvino"


def has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def logits(engine: Reranker) -> np.ndarray:
    """The graph's raw output for every PAIR in one padded batch."""
    encodings = engine.encoder.encode(PAIRS)
    rows = list(range(len(encodings)))
    return engine.session.run(pad_batch(encodings, rows, engine.encoder.pad_id, engine.session.wants_token_types))


@needs_openvino
@pytest.mark.parametrize("name", sorted(REFERENCES["models"]))
def test_fp32_equals_pytorch_reference(name: str, compiled_cache: Path) -> None:
    # OpenVINO's CPU plugin would run bf16 on this CPU unless told f32: bf16 misses these by 0.1 to 6.
    engine = Reranker.from_dir(FIXTURES / name, provider="openvino", batch_size=3)
    assert engine.session.provider == "openvino"
    default = np.asarray(REFERENCES["models"][name]["default"])
    expected = default[:, 1] if default.ndim == 2 else default
    np.testing.assert_allclose(engine.score_pairs(PAIRS), expected, atol=TOLERANCE, rtol=0)
    # Raw logits reach 12.7 (tiny-deberta-2label), where fp32 summation order alone moves them by 1.05e-4.
    scores = np.asarray(REFERENCES["models"][name]["scores"])
    np.testing.assert_allclose(logits(engine).reshape(scores.shape), scores, atol=TOLERANCE, rtol=TOLERANCE / 10)
    assert any(compiled_cache.iterdir())


@needs_openvino
def test_external_data_and_int_types_as_declared() -> None:
    engine = Reranker.from_dir(XLMR, onnx_file="onnx-ext/model.onnx", provider="openvino", activation="none")
    np.testing.assert_allclose(engine.score_pairs(PAIRS), REFERENCES["models"]["tiny-xlmr"]["scores"],
                               atol=TOLERANCE, rtol=0)
    assert not engine.session.wants_token_types
    assert Reranker.from_dir(BERT, provider="openvino").session.wants_token_types


@needs_openvino
def test_bf16_moves_scores_a_little() -> None:
    if not has_bf16():
        pytest.skip("this CPU has no BF16 instructions (AVX-512 BF16 or AMX)")
    fp32 = Reranker.from_dir(XLMR, provider="openvino", activation="none").score_pairs(PAIRS)
    bf16 = Reranker.from_dir(XLMR, provider="openvino", precision="bf16", activation="none").score_pairs(PAIRS)
    error = np.abs(bf16 - fp32).max()
    # Measured on Zen 4: 0.135 on a spread of 5.7 for this random tiny model (the trained MiniLM moves far
    # less; see the README). The lower bound proves bf16 really ran.
    assert 1e-3 < error < 0.1 * np.ptp(fp32)


@needs_openvino
@pytest.mark.parametrize("command", ["score", "rerank"])
def test_cli_output_matches_onnxruntime(command: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": d}) + "\n" for i, (_, d) in enumerate(PAIRS)))
    out = {}
    for provider in ("cpu", "openvino"):
        result = runner.invoke(app, [command, "-q", QUERY, "-m", str(BERT), str(docs), "-f", "jsonl",
                                     "--provider", provider, "--threads", "1"])
        assert result.exit_code == 0, result.output
        out[provider] = [json.loads(line) for line in result.stdout.splitlines()]
    ort, ov = out["cpu"], out["openvino"]
    assert [list(r) for r in ov] == [list(r) for r in ort] and [r["id"] for r in ov] == [r["id"] for r in ort]
    np.testing.assert_allclose([r["score"] for r in ov], [r["score"] for r in ort], atol=TOLERANCE, rtol=0)


@needs_openvino
def test_cli_bf16_runs_where_the_cpu_has_it(tmp_path: Path) -> None:
    if not has_bf16():
        pytest.skip("this CPU has no BF16 instructions (AVX-512 BF16 or AMX)")
    result = runner.invoke(app, ["rerank", "-q", QUERY, "-m", str(BERT), "-f", "jsonl", "--provider", "openvino",
                                 "--precision", "bf16"], input="".join(f'"{d}"\n' for _, d in PAIRS[:4]))
    assert result.exit_code == 0, result.output
    assert [r["rank"] for r in map(json.loads, result.stdout.splitlines())] == [1, 2, 3, 4]


def test_bad_precision_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="precision 'fp16' is not one of 'fp32', 'bf16'"):
        Reranker.from_dir(BERT, precision="fp16")
    result = runner.invoke(app, ["score", "-q", "q", "-m", str(BERT), "--precision", "fp16"], input='"a"\n')
    assert result.exit_code == 2 and "'fp16' is not one of 'fp32', 'bf16'" in result.stderr


def test_bf16_on_onnxruntime_names_the_openvino_provider() -> None:
    with pytest.raises(UsageError, match="no BF16 MatMul"):
        Reranker.from_dir(BERT, precision="bf16")
    result = runner.invoke(app, ["batch", "-m", str(BERT), "--precision", "bf16"], input="")
    assert result.exit_code == 2
    assert result.stderr.startswith("rerank: error: --precision 'bf16' needs the OpenVINO provider "
                                    "(--provider openvino")
    assert result.stderr.count("\n") == 1


@needs_openvino
def test_unreadable_model_is_one_line_exit_69(model_copy) -> None:
    model = model_copy(BERT)
    onnx = model / "onnx" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:5000])
    with pytest.raises(ModelUnavailable, match="OpenVINO cannot load it"):
        Reranker.from_dir(model, provider="openvino")
    onnx.write_text("not a model\n")
    code = "import sys; from rerank_cli.cli.app import main; sys.argv[0] = 'rerank'; main()"
    out = subprocess.run([sys.executable, "-c", code, "score", "-q", "q", "-m", str(model), "--provider", "openvino"],
                         input=b'"a"\n', capture_output=True)
    assert out.returncode == 69 and out.stdout == b""
    assert out.stderr == f"rerank: error: {onnx}: OpenVINO cannot load it (not an ONNX model); re-download the " \
                         "model or check the file\n".encode()


@pytest.mark.skipif("OpenVINOExecutionProvider" in __import__("onnxruntime").get_available_providers(),
                    reason="this onnxruntime build has its own OpenVINO provider, used without the package")
def test_missing_openvino_names_the_extra() -> None:
    # sys.modules[name] = None makes `import openvino` fail, as on a machine without the package.
    code = ("import sys; sys.modules['openvino'] = None; from rerank_cli.cli.app import main; "
            "sys.argv[0] = 'rerank'; main()")
    out = subprocess.run([sys.executable, "-c", code, "score", "-q", "q", "-m", str(BERT), "--provider", "openvino"],
                         input=b'"a"\n', capture_output=True)
    assert out.returncode == 2 and out.stdout == b""
    assert out.stderr == b"rerank: error: provider 'openvino' needs OpenVINO: pip install 'rerank-cli[openvino]'\n"


def test_cli_and_enum_module_do_not_import_openvino() -> None:
    code = ("import rerank_cli.cli.app, rerank_cli.engine.openvino, sys; "
            "print(','.join(m for m in ('openvino', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@needs_openvino
def test_an_unknown_provider_lists_openvino_among_the_choices() -> None:
    with pytest.raises(UsageError, match=r"'bogus' is not available .*available: .*cpu.*openvino"):
        Reranker.from_dir(BERT, provider="bogus")


@needs_openvino
def test_openvino_sends_no_telemetry(tmp_path: Path) -> None:
    # `import openvino` sends a usage event through openvino-telemetry, from a forked process that writes
    # ~/intel/ (its client id and counters) and can outlive the run holding its stderr; CI=true turns it
    # off, so the variables that do are removed here.
    home = tmp_path / "user-home"
    home.mkdir()
    docs = tmp_path / "d.txt"
    docs.write_text("a cat purrs\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env.update(HOME=str(home), RERANK_HOME=str(tmp_path / "rerank-home"))
    out = subprocess.run([sys.executable, "-m", "rerank_cli", "score", "-q", "cats", "-m", str(BERT), str(docs),
                          "--provider", "openvino"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "score" in json.loads(out.stdout)
    assert not (home / "intel").exists()
