"""Each model's own output function (`--activation auto`), raw logits, two-label heads and real-size limits.

References come from sentence-transformers' CrossEncoder (tests/fixtures/generate.py): `scores` with
activation_fn=Identity, `default` with the model's own default activation (softmax for two labels).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import FIXTURES, PAIRS, REFERENCES, TOLERANCE
from tokenizers import Tokenizer
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app

ONE_LABEL = [n for n, r in REFERENCES["models"].items() if r["labels"] == 1]
TWO_LABEL = [n for n, r in REFERENCES["models"].items() if r["labels"] == 2]
QUERY = PAIRS[0][0]


def refs(name: str) -> dict:
    return REFERENCES["models"][name]


def test_every_family_is_covered() -> None:
    kinds = {json.loads((FIXTURES / n / "config.json").read_text())["model_type"] for n in REFERENCES["models"]}
    assert {"bert", "xlm-roberta", "modernbert", "deberta-v2"} <= kinds
    assert {"Identity", "Sigmoid"} <= {refs(n)["default_activation"] for n in ONE_LABEL}
    assert len(TWO_LABEL) >= 3


@pytest.mark.parametrize("name", ONE_LABEL)
def test_auto_equals_crossencoder_default_and_none_equals_identity(name: str) -> None:
    auto = Reranker(FIXTURES / name).score_pairs(PAIRS)
    np.testing.assert_allclose(auto, refs(name)["default"], atol=TOLERANCE, rtol=0)
    raw = Reranker(FIXTURES / name, activation="none", batch_size=3).score_pairs(PAIRS)
    assert raw.dtype == np.float32
    np.testing.assert_allclose(raw, refs(name)["scores"], atol=TOLERANCE, rtol=0)
    probs = Reranker(FIXTURES / name, activation="sigmoid").score_pairs(PAIRS)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-np.asarray(refs(name)["scores"]))), atol=TOLERANCE / 4)


@pytest.mark.parametrize("name", TWO_LABEL)
def test_two_label_heads_are_scored_by_the_documented_rule(name: str) -> None:
    logits = np.asarray(refs(name)["scores"], dtype=np.float64)
    softmax_relevant = np.asarray(refs(name)["default"])[:, 1]
    for activation in ("auto", "sigmoid"):
        scores = Reranker(FIXTURES / name, activation=activation).score_pairs(PAIRS)
        np.testing.assert_allclose(scores, softmax_relevant, atol=TOLERANCE / 4, rtol=0)
    margin = Reranker(FIXTURES / name, activation="none", batch_size=1).score_pairs(PAIRS)
    np.testing.assert_allclose(margin, logits[:, 1] - logits[:, 0], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", ["tiny-modernbert", "tiny-deberta-2label"])
def test_cli_activation_option(name: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    chosen = [i for i, (q, _) in enumerate(PAIRS) if q == QUERY]
    docs.write_text("".join(orjson.dumps({"text": PAIRS[i][1]}).decode() + "\n" for i in chosen))
    runner = CliRunner()
    auto = runner.invoke(app, ["score", "-q", QUERY, "-m", str(FIXTURES / name), str(docs), "--quiet"])
    none = runner.invoke(app, ["score", "-q", QUERY, "-m", str(FIXTURES / name), str(docs), "--quiet",
                               "--activation", "none"])
    assert auto.exit_code == 0 and none.exit_code == 0, auto.stderr + none.stderr
    got_auto = [orjson.loads(line)["score"] for line in auto.stdout.splitlines()]
    got_none = [orjson.loads(line)["score"] for line in none.stdout.splitlines()]
    default = np.asarray(refs(name)["default"])
    logits = np.asarray(refs(name)["scores"])
    if refs(name)["labels"] == 2:
        default, logits = default[:, 1], logits[:, 1] - logits[:, 0]
    np.testing.assert_allclose(got_auto, default[chosen], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(got_none, logits[chosen], atol=TOLERANCE, rtol=0)
    assert all(0.0 <= s <= 1.0 for s in got_auto)


def write_config(model: Path, name: str, **keys: object) -> None:
    path = model / name
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**data, **keys}))


def test_declaration_order_follows_crossencoder(model_copy) -> None:
    model = model_copy()  # tiny-bert: the legacy key says Identity
    logits = np.asarray(refs("tiny-bert")["scores"])
    np.testing.assert_allclose(Reranker(model).score_pairs(PAIRS), logits, atol=TOLERANCE)
    # config.json's sentence_transformers block wins over the legacy key...
    write_config(model, "config.json", sentence_transformers={"activation_fn": "torch.nn.modules.activation.Sigmoid"})
    sigmoid = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(Reranker(model).score_pairs(PAIRS), sigmoid, atol=TOLERANCE / 4)
    # ...and config_sentence_transformers.json (sentence-transformers 4+) wins over both.
    write_config(model, "config_sentence_transformers.json", activation_fn="torch.nn.modules.linear.Identity")
    np.testing.assert_allclose(Reranker(model).score_pairs(PAIRS), logits, atol=TOLERANCE)


def test_untrusted_activation_path_falls_back_to_the_default(model_copy) -> None:
    # CrossEncoder without trust_remote_code ignores a non-torch path and uses Sigmoid (one label).
    model = model_copy()
    write_config(model, "config_sentence_transformers.json", activation_fn="my_package.Identity")
    config = json.loads((model / "config.json").read_text())
    del config["sbert_ce_default_activation_function"]
    (model / "config.json").write_text(json.dumps(config))
    expected = 1 / (1 + np.exp(-np.asarray(refs("tiny-bert")["scores"])))
    np.testing.assert_allclose(Reranker(model).score_pairs(PAIRS), expected, atol=TOLERANCE / 4)


def test_unsupported_declared_activation_is_one_line_with_the_fix(model_copy) -> None:
    model = model_copy()
    write_config(model, "config.json", sentence_transformers={"activation_fn": "torch.nn.modules.activation.Tanh"})
    result = CliRunner().invoke(app, ["score", "-q", "q", "-m", str(model)], input="doc\n")
    assert result.exit_code == 69
    assert "Tanh" in result.stderr and "--activation none" in result.stderr
    assert result.stderr.count("\n") == 1
    # An explicit choice does not need the declaration.
    ok = CliRunner().invoke(app, ["score", "-q", "q", "-m", str(model), "--activation", "none"], input="doc\n")
    assert ok.exit_code == 0, ok.stderr


def test_sigmoid_flag_still_works_with_a_deprecation_warning() -> None:
    runner = CliRunner()
    old = runner.invoke(app, ["score", "-q", QUERY, "-m", str(FIXTURES / "tiny-bert"), "--sigmoid"], input="Paris\n")
    new = runner.invoke(app, ["score", "-q", QUERY, "-m", str(FIXTURES / "tiny-bert"), "--activation", "sigmoid"],
                        input="Paris\n")
    assert old.exit_code == 0 and old.stdout == new.stdout
    assert "--sigmoid is deprecated" in old.stderr and "--activation sigmoid" in old.stderr


@pytest.mark.parametrize("name", ["tiny-bert-512", "tiny-xlmr-514"])
def test_real_size_limits_from_the_model_files(name: str) -> None:
    # tiny-bert-512: model_max_length 512; tiny-xlmr-514: no usable model_max_length, 514 RoBERTa positions.
    engine = Reranker(FIXTURES / name, activation="none")
    assert engine.max_length == 512
    whole = Tokenizer.from_file(str(FIXTURES / name / "tokenizer.json"))
    whole.no_truncation()
    assert len(whole.encode(*PAIRS[-1]).ids) > 1500
    assert len(engine.encoder.encode([PAIRS[-1]])[0].ids) == 512
    np.testing.assert_allclose(engine.score_pairs([PAIRS[-1]]), refs(name)["scores"][-1:], atol=TOLERANCE)


def test_python_api_sigmoid_keyword_is_deprecated_and_bad_activation_is_a_value_error() -> None:
    with pytest.warns(DeprecationWarning, match="activation='sigmoid'"):
        engine = Reranker(FIXTURES / "tiny-bert", sigmoid=True)
    assert engine.activation == "sigmoid"
    assert Reranker(FIXTURES / "tiny-bert").activation == "none"  # ms-marco style: Identity declared
    assert Reranker(FIXTURES / "tiny-modernbert").activation == "sigmoid"
    assert Reranker(FIXTURES / "tiny-deberta-2label").activation == "softmax"
    with pytest.raises(ValueError, match="activation 'tanh'"):
        Reranker(FIXTURES / "tiny-bert", activation="tanh")


def test_contradicting_sigmoid_and_activation_is_refused() -> None:
    # The deprecated keyword must never silently override the new one (a stranger's test found it did).
    for sigmoid, activation in ((False, "sigmoid"), (True, "none")):
        with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="contradicts"):
            Reranker(FIXTURES / "tiny-bert", sigmoid=sigmoid, activation=activation)
    with pytest.raises(TypeError, match="offline must be True or False"):
        Reranker(FIXTURES / "tiny-bert", offline="yes")  # type: ignore[arg-type]
