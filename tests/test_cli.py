"""The commands through Typer's runner: formats, stdin, several files, top-k and the error exits."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from conftest import BERT, PAIRS, TOLERANCE, XLMR, reference_scores
from typer.testing import CliRunner

from rerank_cli import __version__
from rerank_cli.cli.app import app

runner = CliRunner()
QUERY = "what is the capital of france"


def run(*args: str, stdin: str | bytes | None = None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def jsonl(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    lines = [{"id": f"d{i}", "text": d, "meta": {"n": i}} for i, (_, d) in enumerate(PAIRS) if _ == QUERY]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def query_refs(model: str) -> list[float]:
    return [s for (q, _), s in zip(PAIRS, reference_scores(model)) if q == QUERY]


@pytest.mark.parametrize(("model", "path"), [("tiny-bert", BERT), ("tiny-xlmr", XLMR)])
def test_score_jsonl_matches_reference_and_keeps_fields(docs: Path, model: str, path: Path) -> None:
    result = run("score", "-q", QUERY, "-m", path, docs)
    assert result.exit_code == 0, result.stderr
    rows = jsonl(result.stdout)
    assert [r["id"] for r in rows] == [f"d{i}" for i, (q, _) in enumerate(PAIRS) if q == QUERY]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    assert all(list(r) == ["id", "text", "meta", "index", "score"] for r in rows)
    assert max(abs(r["score"] - e) for r, e in zip(rows, query_refs(model))) < TOLERANCE
    # Two documents are longer than the model's limit: one warning line, once, not per document.
    limit = 40 if model == "tiny-bert" else 48
    assert result.stderr == (f"rerank: warning: 2 of 6 pairs were longer than {limit} tokens and were truncated "
                             "longest-first (--max-length sets the limit; --long-docs chunk scores the whole text; "
                             "--quiet hides this)\n")
    assert run("score", "-q", QUERY, "-m", path, docs, "--quiet").stderr == ""


def test_rerank_top_k_best_first(docs: Path) -> None:
    result = run("rerank", "-q", QUERY, "-m", BERT, docs, "--top-k", "2")
    assert result.exit_code == 0, result.stderr
    rows = jsonl(result.stdout)
    refs = query_refs("tiny-bert")
    best = sorted(range(len(refs)), key=lambda i: -refs[i])[:2]
    assert [r["index"] for r in rows] == best and [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["score"] >= rows[1]["score"]


def test_stdin_default_and_dash_with_text_lines() -> None:
    for args in (["score", "-q", QUERY, "-m", BERT], ["score", "-q", QUERY, "-m", BERT, "-"]):
        result = run(*args, stdin="The capital of France is Paris.\n\n")
        assert result.exit_code == 0, result.stderr
        rows = jsonl(result.stdout)
        assert [list(r) for r in rows] == [["index", "text", "score"]] * 2
        assert rows[1]["text"] == ""
        assert abs(rows[0]["score"] - reference_scores("tiny-bert")[0]) < TOLERANCE


def test_several_files_and_stdin_share_one_index(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("one\ntwo\n")
    b = tmp_path / "b.json"
    b.write_text('[{"text": "three", "id": 3}]')
    result = run("score", "-q", "q", "-m", BERT, a, "-", b, stdin='"from stdin"\n')
    assert result.exit_code == 0, result.stderr
    rows = jsonl(result.stdout)
    assert [(r["index"], r["text"]) for r in rows] == [(0, "one"), (1, "two"), (2, "from stdin"), (3, "three")]


def test_json_and_tsv_formats(docs: Path) -> None:
    as_json = run("rerank", "-q", QUERY, "-m", BERT, docs, "-f", "json")
    assert as_json.exit_code == 0
    parsed = orjson.loads(as_json.stdout)
    assert [r["rank"] for r in parsed] == list(range(1, len(parsed) + 1))
    as_tsv = run("score", "-q", QUERY, "-m", BERT, docs, "--format", "tsv")
    lines = as_tsv.stdout.splitlines()
    assert lines[0] == "index\tscore\tid\ttext" and len(lines) == len(parsed) + 1
    by_index = sorted(parsed, key=lambda r: r["index"])
    assert [float(x.split("\t")[1]) for x in lines[1:]] == [r["score"] for r in by_index]


def test_table_format_rounds_for_display(docs: Path) -> None:
    result = run("rerank", "-q", QUERY, "-m", BERT, docs, "-f", "table", "-k", "1")
    assert result.exit_code == 0
    assert "rank" in result.stdout and "score" in result.stdout
    best = max(query_refs("tiny-bert"))
    assert f"{best:.4f}" in result.stdout


def test_field_option_and_sigmoid(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "The capital of France is Paris."}\n')
    result = run("score", "-q", QUERY, "-m", BERT, "--field", "body", "--sigmoid", path)
    assert result.exit_code == 0, result.stderr
    (row,) = jsonl(result.stdout)
    import math

    assert abs(row["score"] - 1 / (1 + math.exp(-reference_scores("tiny-bert")[0]))) < TOLERANCE


def test_retriever_score_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "hits.jsonl"
    path.write_text('{"id": 7, "score": 12.5, "text": "Paris"}\n')
    (row,) = jsonl(run("score", "-q", "q", "-m", BERT, path).stdout)
    assert row["input_score"] == 12.5 and list(row) == ["id", "input_score", "text", "index", "score"]
    (row,) = jsonl(run("score", "-q", "q", "-m", BERT, path, "--score-key", "ce").stdout)
    assert row["score"] == 12.5 and "ce" in row


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\n{"text": oops}\n', "d.jsonl:2: invalid JSON"),
        ('{"text": "ok"}\n{"body": "x"}\n', "d.jsonl:2: no 'text' field"),
        ('{"text": "ok"}\n{"text": 5}\n', "d.jsonl:2: field 'text' is a number, not a string"),
    ],
)
def test_bad_input_line_exits_65_with_location(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    result = run("score", "-q", "q", "-m", BERT, path)
    assert result.exit_code == 65
    assert result.stderr.strip().endswith(message + result.stderr.strip().split(message, 1)[1])
    assert message in result.stderr and "Traceback" not in result.stderr
    assert all(orjson.loads(line) for line in result.stdout.splitlines())  # only complete lines


def test_missing_input_file_exits_66_before_loading_the_model(tmp_path: Path) -> None:
    result = run("score", "-q", "q", "-m", tmp_path / "no-model", tmp_path / "missing.jsonl")
    assert result.exit_code == 66
    assert result.stderr == f"rerank: error: {tmp_path / 'missing.jsonl'}: no such file\n"


def test_broken_model_dir_names_the_missing_file(model_copy) -> None:
    model = model_copy(BERT)
    (model / "config.json").unlink()
    result = run("score", "-q", "q", "-m", model, stdin="x\n")
    assert result.exit_code == 69
    assert "missing config.json" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(model_copy) -> None:
    model = model_copy(BERT)
    (model / "config.json").unlink()
    result = run("score", "-q", "q", "-m", model, "--debug", stdin="x\n")
    assert result.exit_code == 69 and "Traceback" in result.stderr


def test_unknown_provider_is_a_usage_error() -> None:
    result = run("score", "-q", "q", "-m", BERT, "--provider", "cuda", stdin="x\n")
    assert result.exit_code == 2
    assert "'cuda' is not available" in result.stderr and "cpu" in result.stderr


def test_bad_option_values_are_usage_errors() -> None:
    assert run("score", "-q", "q", "-m", BERT, "--batch-size", "0", stdin="x").exit_code == 2
    assert run("rerank", "-q", "q", "-m", BERT, "--top-k", "0", stdin="x").exit_code == 2
    assert run("score", "-m", BERT, stdin="x").exit_code == 2  # --query is required


def test_empty_input_gives_no_output() -> None:
    result = run("score", "-q", "q", "-m", BERT, "--input-format", "jsonl", stdin="")
    assert result.exit_code == 0 and result.stdout == ""


def test_version_and_help_everywhere() -> None:
    assert run("--version").stdout == f"rerank {__version__}\n"
    top = run("-h")
    assert top.exit_code == 0 and "Exit codes:" in top.stdout and "65" in top.stdout
    for command in ("score", "rerank"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert f"rerank {command} -q" in result.stdout  # an example in every command's help


def test_cli_defaults_match_the_engine() -> None:
    # The CLI keeps numpy out of `--help`, so it repeats the engine's defaults; they must agree.
    import inspect

    from rerank_cli.cli.app import rerank, score
    from rerank_cli.engine import engine

    for command in (score, rerank):
        params = inspect.signature(command).parameters
        assert params["batch_size"].default == engine.DEFAULT_BATCH_SIZE
        assert params["batch_tokens"].default == engine.DEFAULT_BATCH_TOKENS


def test_quantize_a_local_directory(model_copy) -> None:
    model = model_copy(BERT)
    before = run("score", "-q", "q", "-m", model, "--variant", "local-int8", stdin="x\n")
    assert before.exit_code == 69 and "rerank models quantize" in before.stderr
    assert run("models", "quantize", model).exit_code == 0
    assert (model / "onnx/model_local_int8.onnx").is_file()
    assert not [p for p in (model / "onnx").iterdir() if p.name.startswith(".quantizing")]
    after = run("score", "-q", QUERY, "-m", model, "--variant", "local-int8", stdin="Paris\n")
    assert after.exit_code == 0 and jsonl(after.stdout)[0]["text"] == "Paris"
