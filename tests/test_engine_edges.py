"""The engine at its edges: texts the pre-cut must not spoil, NaN scores, odd exports, bad API arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import BERT, PAIRS, TOLERANCE, XLMR, reference_scores
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app
from rerank_cli.engine.batching import pad_batch, plan_batches
from rerank_cli.errors import ArgumentTypeError, ModelUnavailable, UsageError
from rerank_cli.pipeline import best_first

QUERY = "what is the capital of france"
TEXT = "paris is the capital and largest city of france"
runner = CliRunner()


def unclipped_scores(engine: Reranker, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Scores from the tokenizer on the whole texts (no pre-cut): what the pre-cut must never change."""
    encodings = engine.encoder.tokenizer.encode_batch(pairs, add_special_tokens=True)
    out = np.empty(len(pairs), dtype=np.float32)
    for rows in plan_batches([len(e.ids) for e in encodings], 8):
        out[rows] = engine.session.run(pad_batch(encodings, rows, engine.encoder.pad_id,
                                                 engine.session.wants_token_types))[:, 0]  # one label
    return out


# Runs of characters a tokenizer drops or merges: each run is longer than 64 characters per token.
RUNS = [" ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", "\u200b", "\ufeff", "\u00ad", "\u2060",
        " \u200b\n\t", "\x00"]


@pytest.mark.parametrize("path", [BERT, XLMR], ids=["bert", "xlmr"])
def test_whitespace_runs_do_not_cost_the_text(path: Path) -> None:
    engine = Reranker(path)
    docs = []
    for run in RUNS:
        filler = run * (33_000 // len(run))
        docs += [filler + TEXT, TEXT + filler + TEXT, "capital " + filler + TEXT + filler]
    pairs = [(QUERY, d) for d in docs] + [(d, "paris") for d in docs[:6]]
    np.testing.assert_allclose(engine.score_pairs(pairs), unclipped_scores(engine, pairs), atol=TOLERANCE, rtol=0)
    # The text after the run is really seen: a run before it does not score like an empty document.
    assert abs(engine.score(QUERY, [" " * 33_000 + TEXT])[0] - engine.score(QUERY, [""])[0]) > 1e-3


def test_long_unknown_word_and_left_truncation_keep_the_right_tokens(model_copy) -> None:
    # One 40,000-character word is a single [UNK] for WordPiece: the text after it is kept by tokens.
    engine = Reranker(BERT)
    pairs = [(QUERY, "x" * 40_000 + " " + TEXT), (QUERY, "\u200b".join("x" * 20_000) + " " + TEXT)]
    np.testing.assert_allclose(engine.score_pairs(pairs), unclipped_scores(engine, pairs), atol=TOLERANCE, rtol=0)
    # A tokenizer that truncates on the left keeps the end of a long text: the pre-cut must keep it too.
    model = model_copy(BERT)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**cfg, "truncation_side": "left"}))
    left = Reranker(model)
    pairs = [(QUERY, "berlin is in germany. " * 2_000 + TEXT), (QUERY, TEXT + " " * 40_000)]
    np.testing.assert_allclose(left.score_pairs(pairs), unclipped_scores(left, pairs), atol=TOLERANCE, rtol=0)


def test_xlmr_unknown_character_runs_are_one_token() -> None:
    # tiny-xlmr has no normalizer: a run of U+200B is one fused <unk>, so the text after it is kept.
    engine = Reranker(XLMR)
    pairs = [(QUERY, "\u200b" * 30_000 + TEXT), (QUERY, "\U0001f600" * 30_000 + " " + TEXT)]
    np.testing.assert_allclose(engine.score_pairs(pairs), unclipped_scores(engine, pairs), atol=TOLERANCE, rtol=0)


# --- NaN scores -----------------------------------------------------------------------------------


def _edit_graph(source: Path, target_dir: Path, edit) -> Path:
    """Copy a fixture model with its graph changed by `edit(model)` (the weights stay as they are)."""
    import shutil

    shutil.copytree(source, target_dir)
    model = onnx.load(str(target_dir / "onnx/model.onnx"))
    edit(model)
    onnx.save(model, str(target_dir / "onnx/model.onnx"))
    return target_dir


def _sqrt_of_logits_plus_one(model: onnx.ModelProto) -> None:
    # sqrt(logit + 1): NaN for the tiny model's documents scoring below -1, finite for the others.
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["raw_logits" if o == "logits" else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"))
    graph.node.extend([helper.make_node("Add", ["raw_logits", "one"], ["shifted"]),
                       helper.make_node("Sqrt", ["shifted"], ["logits"])])


@pytest.fixture
def nan_model(tmp_path: Path) -> Path:
    return _edit_graph(BERT, tmp_path / "nan-bert", _sqrt_of_logits_plus_one)


def _expected_nan_order(scores: list[float]) -> list[int]:
    finite = sorted((i for i, s in enumerate(scores) if s == s), key=lambda i: (-scores[i], i))
    return finite + [i for i, s in enumerate(scores) if s != s]


def test_nan_scores_rank_last_in_cli_and_api(nan_model: Path, tmp_path: Path) -> None:
    docs = [d for _, d in PAIRS]
    engine = Reranker(nan_model)
    scores = engine.score(QUERY, docs).tolist()
    assert 2 <= sum(s != s for s in scores) <= len(docs) - 3  # the fixture does mix NaN and numbers
    expected = _expected_nan_order(scores)
    assert [i for i, _ in engine.rerank(QUERY, docs)] == expected
    assert [i for i, _ in engine.rerank(QUERY, docs, top_k=3)] == expected[:3]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    for extra in ([], ["-k", "3"], ["-k", str(len(docs) - 1)]):
        result = runner.invoke(app, ["rerank", "-q", QUERY, "-m", str(nan_model), str(path), *extra])
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        want = expected[:int(extra[1])] if extra else expected
        assert [r["index"] for r in rows] == want
        assert [r["rank"] for r in rows] == list(range(1, len(want) + 1))


def test_best_first_puts_nan_last_with_and_without_top_k() -> None:
    nan = float("nan")
    scored = [(nan, 0, "a"), (1.0, 1, "b"), (nan, 2, "c"), (-np.inf, 3, "d"), (2.0, 4, "e"), (1.0, 5, "f")]
    assert [p for _, _, p in best_first(scored, None)] == ["e", "b", "f", "d", "a", "c"]
    for k in range(1, 7):
        assert [p for _, _, p in best_first(iter(scored), k)] == ["e", "b", "f", "d", "a", "c"][:k]


# --- threads --------------------------------------------------------------------------------------


def test_threads_are_bounded_in_the_api_and_the_cli() -> None:
    limit = 8 * (os.cpu_count() or 1)
    assert Reranker(BERT, threads=limit).score("q", ["d"]).shape == (1,)
    with pytest.raises(UsageError, match=rf"threads={limit + 1} is too many.*at most {limit}") as info:
        Reranker(BERT, threads=limit + 1)
    assert isinstance(info.value, ValueError) and "--threads" not in str(info.value)
    result = runner.invoke(app, ["score", "-q", "q", "-m", str(BERT), "--threads", "100000"], input="d\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--threads 100000 is too many" in result.stderr and "Traceback" not in result.stderr


# --- odd exports ----------------------------------------------------------------------------------


def _int32_inputs(model: onnx.ModelProto) -> None:
    # Some exporters declare int32 ids: the graph casts them to int64 itself.
    graph = model.graph
    casts = []
    for graph_input in graph.input:
        graph_input.type.tensor_type.elem_type = TensorProto.INT32
        for node in graph.node:
            node.input[:] = [f"{graph_input.name}_64" if i == graph_input.name else i for i in node.input]
        casts.append(helper.make_node("Cast", [graph_input.name], [f"{graph_input.name}_64"], to=TensorProto.INT64))
    for cast in reversed(casts):
        graph.node.insert(0, cast)


def test_int32_graph_inputs_are_fed_int32(tmp_path: Path) -> None:
    model = _edit_graph(BERT, tmp_path / "int32-bert", _int32_inputs)
    np.testing.assert_allclose(Reranker(model).score_pairs(PAIRS), reference_scores("tiny-bert"),
                               atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(("source", "model", "limit"), [(BERT, "tiny-bert", 64), (XLMR, "tiny-xlmr", 48)])
def test_limit_comes_from_the_position_table_when_config_has_none(model_copy, source: Path, model: str,
                                                                  limit: int) -> None:
    path = model_copy(source)
    config = json.loads((path / "config.json").read_text())
    del config["max_position_embeddings"]
    (path / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps({**tok_config, "model_max_length": int(1e30)}))
    engine = Reranker(path)
    assert engine.max_length == limit
    long_pair = (QUERY, "paris is the capital of france " * 100)
    assert np.isfinite(engine.score_pairs([long_pair])).all()
    if model == "tiny-xlmr":  # the reference was computed at the tokenizer's 48
        np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores(model), atol=TOLERANCE, rtol=0)
    with pytest.raises(UsageError, match=rf"max_length={limit + 1} exceeds the {limit} tokens the model"):
        Reranker(path, max_length=limit + 1)


def _fixed_batch_of_one(model: onnx.ModelProto) -> None:
    # A graph that only works for one row at a time: onnxruntime fails at run time on a batch of two.
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["raw_logits" if o == "logits" else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "one_row"))
    graph.node.append(helper.make_node("Reshape", ["raw_logits", "one_row"], ["logits"]))


def test_run_time_failure_is_one_line_without_the_onnxruntime_log(tmp_path: Path, capfd) -> None:
    model = _edit_graph(BERT, tmp_path / "one-row-bert", _fixed_batch_of_one)
    assert Reranker(model).score("q", ["only one"]).shape == (1,)
    with pytest.raises(ModelUnavailable, match="onnxruntime failed"):
        Reranker(model).score("q", ["one", "two"])
    for quiet in ([], ["--quiet"]):
        result = runner.invoke(app, ["score", "-q", "q", "-m", str(model), *quiet], input="one\ntwo\n")
        assert result.exit_code == 69
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("rerank: error: ") and "onnxruntime failed" in lines[0]
        assert "batch" in lines[0]
    # onnxruntime's C++ logger writes to file descriptor 2 directly, past CliRunner: capfd sees it.
    assert "onnxruntime" not in capfd.readouterr().err


# --- Python API arguments -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert() -> Reranker:
    return Reranker(BERT)


def test_api_rejects_wrong_argument_types_with_their_place(bert: Reranker) -> None:
    with pytest.raises(TypeError, match="docs must be .*not a str"):
        bert.score("q", "a string")
    with pytest.raises(TypeError, match="docs must be .*not a str"):
        bert.rerank("q", "a string")
    with pytest.raises(TypeError, match=r"pairs\[0\] must be a \(query, document\) pair.*str"):
        bert.score_pairs(["ab"])
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a \(query, document\) pair"):
        bert.score_pairs([("q", "d"), ("q", "d", "e")])
    with pytest.raises(TypeError, match=r"pairs\[0\]\[1\] must be a str, not None"):
        bert.score_pairs([("q", None)])
    with pytest.raises(TypeError, match=r"docs\[2\] must be a str, not None"):
        bert.score("q", ["a", "b", None])
    with pytest.raises(TypeError, match=r"docs\[1\] must be a str, not int"):
        bert.rerank("q", ["a", 5])
    with pytest.raises(TypeError, match="query must be a str, not int"):
        bert.score(3, ["a"])  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError):
        bert.rerank("q", ["a"], top_k=True)
    with pytest.raises(TypeError, match="top_k must be an int"):
        bert.rerank("q", ["a"], top_k=2.0)  # type: ignore[arg-type]


def test_api_rejects_bad_values_naming_python_parameters(bert: Reranker) -> None:
    with pytest.raises(ValueError, match="top_k=-1 .*1 or more"):
        bert.rerank("q", ["a", "b"], top_k=-1)
    with pytest.raises(ValueError, match="top_k=0 "):
        bert.rerank("q", ["a", "b"], top_k=0)
    for options, name in [({"batch_size": 0}, "batch_size=0"), ({"batch_tokens": -5}, "batch_tokens=-5"),
                          ({"threads": 0}, "threads=0"), ({"max_length": 2}, "max_length=2"),
                          ({"max_length": 10_000}, "max_length=10000")]:
        with pytest.raises(UsageError, match=name) as info:
            Reranker(BERT, **options)
        assert isinstance(info.value, ValueError) and "--" not in str(info.value)
    for options in ({"batch_size": True}, {"threads": 2.5}, {"max_length": "40"}, {"provider": 3}):
        with pytest.raises(ArgumentTypeError):
            Reranker(BERT, **options)
        with pytest.raises(ArgumentTypeError):
            Reranker.from_dir(BERT, **options)
    with pytest.raises(ArgumentTypeError, match="model must be a str or a path, not None"):
        Reranker(None)  # type: ignore[arg-type]


def test_api_accepts_any_iterable_of_strings(bert: Reranker) -> None:
    docs = [d for _, d in PAIRS[:5]]
    expected = bert.score(QUERY, docs)
    np.testing.assert_allclose(bert.score(QUERY, np.array(docs)), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(bert.score(QUERY, (d for d in docs)), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(bert.score(np.str_(QUERY), tuple(docs)), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(bert.score_pairs(np.array([(QUERY, d) for d in docs])), expected,
                               atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(bert.score_pairs([[QUERY, d] for d in docs]), expected, atol=TOLERANCE, rtol=0)
    assert [i for i, _ in bert.rerank(QUERY, (d for d in docs), top_k=2)] == [i for i, _ in bert.rerank(QUERY,
                                                                                                       docs)][:2]
    assert bert.rerank(QUERY, docs, top_k=100) == bert.rerank(QUERY, docs)


def test_usage_errors_are_value_errors_and_keep_exit_codes() -> None:
    from rerank_cli.errors import InputError, RerankError

    assert issubclass(UsageError, ValueError) and issubclass(ArgumentTypeError, TypeError)
    assert issubclass(ArgumentTypeError, UsageError) and issubclass(UsageError, RerankError)
    assert (UsageError.exit_code, ArgumentTypeError.exit_code, InputError.exit_code) == (2, 2, 65)


@pytest.mark.parametrize("run", ["\u3000", "\u00a0", "\u2003", "\t \u3000"])
def test_runs_silent_only_as_runs_do_not_cost_the_text(run: str) -> None:
    # DeBERTa-v2's normalizer turns a run of 2+ whitespace characters into one space, but a lone U+3000
    # stays a character of its own: the pre-cut must shrink such runs too (60,000 characters is past
    # the 16x growth of the bound, so without shrinking the text after the run was cut away).
    from conftest import FIXTURES

    engine = Reranker(FIXTURES / "tiny-deberta", activation="none")
    pairs = [(QUERY, run * (60_000 // len(run)) + TEXT), (QUERY, TEXT)]
    scores = engine.score_pairs(pairs)
    np.testing.assert_allclose(scores, unclipped_scores(engine, pairs), atol=TOLERANCE, rtol=0)
    assert abs(scores[0] - scores[1]) < TOLERANCE
