"""The registry's published exports: sentence-transformers' ONNX names, `--variant int8` for this CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from conftest import BERT, PAIRS
from hubserver import HubServer
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.store.registry import REGISTRY, find_spec, int8_preference

runner = CliRunner()
QUERY = PAIRS[0][0]
TOKENIZER = {n: BERT / n for n in ("config.json", "tokenizer.json", "tokenizer_config.json")}
ST_INT8 = ("qint8_avx512_vnni", "qint8_avx512", "quint8_avx2", "qint8_arm64")


def test_registry_records_sources_activations_and_the_new_families() -> None:
    assert len(REGISTRY) >= 14
    assert all(spec.source and spec.activation in ("none", "sigmoid") for spec in REGISTRY)
    names = {spec.name for spec in REGISTRY}
    assert {"cross-encoder/ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L12-v2",
            "cross-encoder/ms-marco-TinyBERT-L2-v2", "BAAI/bge-reranker-large",
            "Alibaba-NLP/gte-reranker-modernbert-base", "mixedbread-ai/mxbai-rerank-base-v1"} <= names
    st = find_spec("cross-encoder/ms-marco-MiniLM-L6-v2")
    assert st is not None and st.activation == "none"
    assert {f"onnx/model_{v}.onnx" for v in (*ST_INT8, "O1", "O2", "O3", "O4")} <= {f for _, f in st.variants}
    # The old repo names, which the Hub redirects, find the same record.
    assert find_spec("cross-encoder/ms-marco-MiniLM-L-6-v2") is st
    # A commercially usable multilingual entry exists.
    assert any("multilingual" in s.languages and "-nc" not in s.license for s in REGISTRY)


@pytest.mark.parametrize(("flags", "machine", "best"), [
    ({"avx2", "avx512f", "avx512_vnni"}, "x86_64", "qint8_avx512_vnni"),
    ({"avx2", "avx512f"}, "x86_64", "qint8_avx512"),
    ({"avx2"}, "x86_64", "quint8_avx2"),
    (set(), "x86_64", "int8"),
    ({"asimd"}, "aarch64", "qint8_arm64"),
    (set(), "arm64", "qint8_arm64"),
])
def test_int8_preference_follows_the_cpu(flags: set[str], machine: str, best: str) -> None:
    order = int8_preference(frozenset(flags), machine)
    assert order[0] == best and order[-2:] == ("int8", "quantized")
    if machine == "x86_64":
        assert "qint8_arm64" not in order


@pytest.fixture
def st_hub(monkeypatch: pytest.MonkeyPatch):
    """sentence-transformers' repo layout: the fp32 graph and every per-CPU int8 file (tiny-bert's bytes)."""
    server = HubServer().start()
    int8 = {f"onnx/model_{v}.onnx": BERT / "onnx/model_quantized.onnx" for v in ST_INT8}
    server.add_repo("cross-encoder/ms-marco-MiniLM-L6-v2", {**TOKENIZER, "onnx/model.onnx": BERT / "onnx/model.onnx",
                                                            **int8})
    # A repo outside the registry publishing only sentence-transformers' exports (no onnx/model.onnx).
    server.add_repo("org/st-only", {**TOKENIZER, "onnx/model_O2.onnx": BERT / "onnx/model.onnx",
                                    "onnx/model_O4.onnx": b"fp16 graph: never fetched", **int8})
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def test_variant_int8_pulls_only_the_file_for_this_cpu_and_says_so(st_hub: HubServer) -> None:
    best = next(v for v in int8_preference() if v in ST_INT8)
    result = runner.invoke(app, ["score", "-q", QUERY, "-m", "cross-encoder/ms-marco-MiniLM-L6-v2",
                                 "--variant", "int8"], input="Paris\n")
    assert result.exit_code == 0, result.stderr
    assert f"--variant int8: using onnx/model_{best}.onnx" in result.stderr
    assert [p.rsplit("/", 1)[-1] for p in st_hub.gets(".onnx")] == [f"model_{best}.onnx"]
    quiet = runner.invoke(app, ["score", "-q", QUERY, "-m", "cross-encoder/ms-marco-MiniLM-L-6-v2", "--quiet",
                                "--variant", "int8", "--offline"], input="Paris\n")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == result.stdout  # old name, cached


def test_repo_with_only_sentence_transformers_exports_is_found_without_onnx_file(st_hub: HubServer) -> None:
    result = runner.invoke(app, ["score", "-q", QUERY, "-m", "org/st-only"], input="Paris\n")
    assert result.exit_code == 0, result.stderr
    assert "using onnx/model_O2.onnx" in result.stderr
    assert [p.rsplit("/", 1)[-1] for p in st_hub.gets(".onnx")] == ["model_O2.onnx"]
    again = runner.invoke(app, ["score", "-q", QUERY, "-m", "org/st-only", "--offline"], input="Paris\n")
    assert again.exit_code == 0 and again.stdout == result.stdout


def test_local_directory_variant_int8_picks_by_cpu(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(BERT, model)
    (model / "onnx/model.onnx").unlink()
    (model / "onnx/model_quantized.onnx").rename(model / "onnx/model_quint8_avx2.onnx")
    shutil.copy(model / "onnx/model_quint8_avx2.onnx", model / "onnx/model_qint8_arm64.onnx")
    best = next(v for v in int8_preference() if v in ("quint8_avx2", "qint8_arm64"))
    for args in (["--variant", "int8"], []):  # with no onnx/model.onnx, the int8 file is the default too
        result = runner.invoke(app, ["score", "-q", QUERY, "-m", str(model), *args], input="Paris\n")
        assert result.exit_code == 0, result.stderr
        assert f"onnx/model_{best}.onnx" in result.stderr
        assert orjson.loads(result.stdout)["text"] == "Paris"


def test_models_list_shows_what_auto_scores_are() -> None:
    rows = orjson.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {r["name"]: r["activation"] for r in rows}["cross-encoder/ms-marco-MiniLM-L6-v2"] == "none"
    assert {r["name"]: r["activation"] for r in rows}["BAAI/bge-reranker-base"] == "sigmoid"
    table = runner.invoke(app, ["models", "list"], env={"COLUMNS": "80"}).stdout
    line = next(x for x in table.splitlines() if x.startswith("BAAI/bge-reranker-base "))
    assert "0..1" in line and "score" in table.splitlines()[0].split()
