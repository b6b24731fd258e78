"""The engine against PyTorch references, and the model-directory errors users meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import BERT, PAIRS, TOLERANCE, XLMR, reference_scores

from rerank_cli import Reranker
from rerank_cli.errors import ModelUnavailable, UsageError


@pytest.mark.parametrize("batch_size", [1, 3, 32])
@pytest.mark.parametrize(("model", "path"), [("tiny-bert", BERT), ("tiny-xlmr", XLMR)])
def test_scores_equal_pytorch_reference(model: str, path: Path, batch_size: int) -> None:
    scores = Reranker(path, batch_size=batch_size).score_pairs(PAIRS)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, reference_scores(model), atol=TOLERANCE, rtol=0)


def test_external_data_onnx_file_matches_reference() -> None:
    engine = Reranker(XLMR, onnx_file="onnx-ext/model.onnx")
    np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores("tiny-xlmr"), atol=TOLERANCE, rtol=0)


def test_score_keeps_input_order_across_windows() -> None:
    # More documents than one window (256), lengths shuffled, so sorting must be undone correctly.
    engine = Reranker(BERT)
    docs = [d for _, d in PAIRS] * 25
    query = "what is the capital of france"
    expected = {d: float(engine.score(query, [d])[0]) for d in set(docs)}
    scores = engine.score(query, docs)
    assert len(scores) == len(docs)
    np.testing.assert_allclose(scores, [expected[d] for d in docs], atol=TOLERANCE, rtol=0)


def test_rerank_best_first_with_ties_in_input_order() -> None:
    engine = Reranker(BERT)
    docs = ["Paris", "berlin", "Paris", "the fox", "Paris"]
    ranked = engine.rerank("capital of france", docs)
    assert sorted(i for i, _ in ranked) == list(range(5))
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    paris = [i for i, _ in ranked if docs[i] == "Paris"]
    assert paris == [0, 2, 4]  # equal scores keep input order
    assert engine.rerank("capital of france", docs, top_k=2) == ranked[:2]


def test_sigmoid_is_float64_and_does_not_saturate() -> None:
    engine = Reranker(BERT, activation="sigmoid")
    probs = engine.score_pairs(PAIRS)
    assert probs.dtype == np.float64
    expected = 1 / (1 + np.exp(-np.asarray(reference_scores("tiny-bert"), dtype=np.float64)))
    np.testing.assert_allclose(probs, expected, atol=TOLERANCE / 4, rtol=0)
    from rerank_cli.engine.engine import as_floats

    # Logits of 20 and 21 both round to 1.0 in float32; the float64 path keeps them apart for writers.
    high = as_floats(1 / (1 + np.exp(-np.array([20.0, 21.0]))))
    assert high[0] < high[1] < 1.0


def test_empty_inputs_are_valid() -> None:
    engine = Reranker(BERT)
    assert engine.score("q", []).shape == (0,)
    assert engine.rerank("q", []) == []
    assert engine.score("", [""]).shape == (1,)


def test_max_length_override_changes_truncation() -> None:
    long_doc = PAIRS[4]
    full = Reranker(BERT).score_pairs([long_doc])[0]
    short = Reranker(BERT, max_length=12).score_pairs([long_doc])[0]
    assert abs(full - short) > 1e-3
    with pytest.raises(UsageError, match="position embeddings"):
        Reranker(BERT, max_length=100)


def test_threads_and_provider_choices() -> None:
    assert Reranker(BERT, threads=1, provider="cpu").session.provider == "cpu"
    assert Reranker(BERT, provider="CPUExecutionProvider").session.provider == "cpu"
    with pytest.raises(UsageError, match=r"'cuda' is not available .*available: .*cpu"):
        Reranker(BERT, provider="cuda")


def test_missing_tokenizer_is_named(model_copy) -> None:
    model = model_copy(BERT)
    (model / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailable, match="missing tokenizer.json"):
        Reranker(model)


def test_missing_onnx_lists_the_onnx_files_there(model_copy) -> None:
    model = model_copy(BERT)
    (model / "onnx/model.onnx").unlink()
    (model / "onnx/model_quantized.onnx").rename(model / "onnx/reranker.onnx")  # no name we would look for
    with pytest.raises(ModelUnavailable, match=r"no onnx/model.onnx or model.onnx; .*onnx/reranker.onnx"):
        Reranker(model)
    assert Reranker(model, onnx_file="onnx/reranker.onnx").score("q", ["d"]).shape == (1,)


def test_corrupt_onnx_and_tokenizer_are_model_errors(model_copy) -> None:
    model = model_copy(BERT)
    (model / "onnx/model.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ModelUnavailable, match="onnxruntime cannot load it"):
        Reranker(model)
    (model / "tokenizer.json").write_text("{")
    with pytest.raises(ModelUnavailable, match="not a usable tokenizer.json"):
        Reranker(model)


def test_huge_model_max_length_is_bounded_by_positions(model_copy) -> None:
    # Many repos store transformers' "no limit" sentinel; positions must then decide (48 for tiny-xlmr).
    model = model_copy(XLMR)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = int(1e30)
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    engine = Reranker(model)
    assert engine.max_length == 48
    np.testing.assert_allclose(engine.score_pairs(PAIRS), reference_scores("tiny-xlmr"), atol=TOLERANCE, rtol=0)
