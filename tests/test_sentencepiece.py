"""BGE / Jina v2 tokenization: the ids we feed equal SentencePiece's own, on the cases conversions get wrong.

tests/fixtures/sentencepiece holds a SentencePiece model's tokenizer.json laid out as the XLM-R
converter wrote it for published repos, and the ids SentencePiece itself gives for each pair
(generate.py). The model was trained on SentencePiece's ids, so those are the reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from rerank_cli.engine.encoding import PairEncoder

CASES = json.loads((FIXTURES / "sentencepiece" / "cases.json").read_text(encoding="utf-8"))["pairs"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> PairEncoder:
    model = tmp_path_factory.mktemp("sp")
    shutil.copy(FIXTURES / "sentencepiece" / "tokenizer.json", model / "tokenizer.json")
    (model / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512, "pad_token": "<pad>"}))
    return PairEncoder.from_dir(Path(model))


@pytest.mark.parametrize("case", CASES, ids=[repr(c["query"] + " | " + c["document"])[:40] for c in CASES])
def test_pair_ids_equal_sentencepiece(encoder: PairEncoder, case: dict) -> None:
    (encoding,) = encoder.encode([(case["query"], case["document"])])
    assert encoding.ids == case["ids"]


def test_the_published_layout_alone_would_differ() -> None:
    # Guard against a fixture that cannot fail: the file as published gives SentencePiece's ids
    # only after rerank's correction (trailing whitespace becomes a stray "▁" token otherwise).
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(FIXTURES / "sentencepiece" / "tokenizer.json"))
    wrong = [c for c in CASES if raw.encode(c["query"], c["document"]).ids != c["ids"]]
    assert wrong, "the fixture no longer shows the conversion's whitespace difference"
