"""Pair tokenization: limits from the model's own files, and no leaks from tokenizer.json settings."""

from __future__ import annotations

import json

import pytest
from conftest import BERT, XLMR

from rerank_cli.engine.encoding import PairEncoder, position_limit, resolve_max_length
from rerank_cli.errors import UsageError

LONG = "paris is the capital of france " * 40


def test_stray_max_length_is_ignored_and_model_max_length_used() -> None:
    # tiny-bert's tokenizer_config.json says max_length 8 (a training leftover) and model_max_length 40.
    assert json.loads((BERT / "tokenizer_config.json").read_text())["max_length"] == 8
    enc = PairEncoder.from_dir(BERT)
    assert enc.max_length == 40
    assert len(enc.encode([("capital", LONG)])[0].ids) == 40


def test_baked_truncation_and_padding_do_not_leak() -> None:
    baked = json.loads((BERT / "tokenizer.json").read_text())
    assert baked["truncation"]["max_length"] == 16 and baked["padding"]["strategy"] == {"Fixed": 24}
    enc = PairEncoder.from_dir(BERT)
    short, mid = enc.encode([("capital", "paris"), ("what is the capital of france", "berlin is a city in germany")])
    assert len(short.ids) < 16  # no fixed padding to 24
    assert 16 < len(mid.ids) < 40  # no truncation to 16
    assert 0 not in short.ids  # pad id never inside an unpadded encoding


def test_bert_pair_layout_and_token_types() -> None:
    enc = PairEncoder.from_dir(BERT)
    e = enc.encode([("capital", "paris")])[0]
    cls, sep = enc.tokenizer.token_to_id("[CLS]"), enc.tokenizer.token_to_id("[SEP]")
    assert e.ids[0] == cls and e.ids[-1] == sep and e.ids.count(sep) == 2
    first_sep = e.ids.index(sep)
    assert set(e.type_ids[: first_sep + 1]) == {0} and set(e.type_ids[first_sep + 1:]) == {1}


def test_xlmr_pair_layout_without_token_types() -> None:
    enc = PairEncoder.from_dir(XLMR)
    tok = enc.tokenizer
    e = enc.encode([("capital", "paris")])[0]
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    assert e.ids[0] == bos and e.ids[-1] == eos
    assert any(a == b == eos for a, b in zip(e.ids, e.ids[1:]))  # `</s></s>` between query and doc
    assert set(e.type_ids) == {0}
    assert enc.pad_id == tok.token_to_id("<pad>") == 1


def test_longest_first_truncation_keeps_both_sides() -> None:
    enc = PairEncoder.from_dir(BERT)
    e = enc.encode([(LONG, LONG)])[0]
    assert len(e.ids) == 40
    assert sum(1 for t in e.type_ids if t == 0) - sum(1 for t in e.type_ids if t == 1) in (-1, 0, 1, 2)


@pytest.mark.parametrize(
    ("tok_config", "config", "expected"),
    [
        ({"model_max_length": 512}, {"max_position_embeddings": 514, "model_type": "xlm-roberta", "pad_token_id": 1},
         512),
        ({"model_max_length": int(1e30)}, {"max_position_embeddings": 514, "model_type": "xlm-roberta",
                                           "pad_token_id": 1}, 512),
        ({"model_max_length": int(1e30)}, {"max_position_embeddings": 512, "model_type": "bert"}, 512),
        ({"model_max_length": 256, "max_length": 128}, {"max_position_embeddings": 512, "model_type": "bert"}, 256),
        ({}, {"max_position_embeddings": 8192, "model_type": "bert"}, 8192),
        ({}, {}, 512),
    ],
)
def test_resolve_max_length(tok_config: dict, config: dict, expected: int) -> None:
    assert resolve_max_length(tok_config, config) == expected


def test_max_length_override_bounded_by_positions() -> None:
    config = {"max_position_embeddings": 514, "model_type": "roberta", "pad_token_id": 1}
    assert position_limit(config) == 512
    assert resolve_max_length({"model_max_length": 512}, config, 128) == 128
    with pytest.raises(UsageError, match="exceeds the 512 tokens the model's position embeddings hold"):
        resolve_max_length({}, config, 600)


def test_silent_candidates_are_what_a_scan_of_unicode_finds() -> None:
    # The probe's candidates are a constant (a scan of 65k code points cost ~12 ms a load). Every one is
    # whitespace, a control or a format character; on the Unicode version it was made from, all are there.
    import unicodedata

    from rerank_cli.engine.encoding import silent_candidates

    codes = [*range(0x10000), *range(0xE0000, 0xE0080)]
    scanned = "".join(c for c in map(chr, codes) if c.isspace() or unicodedata.category(c) in ("Cc", "Cf"))
    baked = silent_candidates()
    assert set(baked) <= set(scanned) and len(set(baked)) == len(baked)
    if unicodedata.unidata_version == "14.0.0":
        assert baked == scanned


def test_silence_is_probed_only_when_a_text_needs_the_pre_cut() -> None:
    enc = PairEncoder.from_dir(BERT)
    enc.encode([("capital", LONG)])
    assert enc.probed == []  # a normal load and normal texts never pay the probe
    huge = "\u200b" * 5000 + " " + LONG * 20
    (got,) = enc.encode([("capital", huge)])
    assert enc.probed and enc.probed[0] is not None
    assert got.ids == enc.tokenizer.encode("capital", huge).ids  # the pre-cut kept every token
