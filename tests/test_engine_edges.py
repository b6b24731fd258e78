"""The engine at its edges: texts the pre-cut must not spoil, NaN scores, odd exports, bad API arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import BERT, PAIRS
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app
from rerank_cli.pipeline import best_first

QUERY = "what is the capital of france"
TEXT = "paris is the capital and largest city of france"
runner = CliRunner()


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

