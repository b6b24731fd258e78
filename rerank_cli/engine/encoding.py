"""The pair tokenizer: (query, doc) -> token ids exactly as the model was trained to see them.

The tokenizer's own post-processor builds the pair (`[CLS] q [SEP] d [SEP]` with token types for
BERT, `<s> q </s></s> d </s>` for XLM-R); we only control truncation and padding, which published
tokenizer.json files often bake in for other purposes and which must not leak into scores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelUnavailable, UsageError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

# transformers stores "no limit" as a huge sentinel (int(1e30)); anything this large is no limit.
_NO_LIMIT = 1_000_000
# RoBERTa-family models number positions from pad_token_id + 1, so two slots are not usable.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet", "data2vec-text",
                     "longformer"}
_FALLBACK_MAX_LENGTH = 512
_CHARS_PER_TOKEN_BOUND = 64


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(f"{path}: unreadable ({exc}); re-download or fix the model files") from exc
    if not isinstance(data, dict):
        raise ModelUnavailable(f"{path}: expected a JSON object")
    return data


# (rows of the graph's position-embedding table, whether the graph numbers positions from the padding)
GraphPositions = tuple[int, bool]


def position_limit(config: dict[str, Any], graph: GraphPositions | None = None) -> int | None:
    """How many tokens the position embeddings can hold: config.json's count, else the graph's table.

    None when neither says. RoBERTa-family graphs count positions from pad_token_id + 1 (with a
    CumSum over the mask), so their first slots are not usable.
    """
    positions = config.get("max_position_embeddings")
    offset = config.get("model_type") in _OFFSET_POSITIONS
    if not isinstance(positions, int) or isinstance(positions, bool) or positions <= 0:
        if graph is None:
            return None
        positions, from_padding = graph
        offset = offset or (not isinstance(config.get("model_type"), str) and from_padding)
    if offset:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) else 1) + 1
    return positions


def resolve_max_length(tokenizer_config: dict[str, Any], config: dict[str, Any],
                       requested: int | None = None, graph: GraphPositions | None = None) -> int:
    """The pair length limit: `model_max_length`, bounded by the positions, unless overridden.

    A `max_length` key in tokenizer_config.json is a leftover training argument, not the model's
    limit: the Hugging Face reference ignores it, and so do we.
    """
    positions = position_limit(config, graph)
    if requested is not None:
        if requested < 4:
            raise UsageError(f"max_length={requested} is too small: a pair needs room for its special tokens",
                             param="max_length")
        if positions is not None and requested > positions:
            raise UsageError(f"max_length={requested} exceeds the model's {positions} positions; "
                             f"use at most {positions}", param="max_length")
        return requested
    declared = tokenizer_config.get("model_max_length")
    limits = [n for n in (declared, positions) if isinstance(n, int) and 0 < n < _NO_LIMIT]
    return min(limits) if limits else _FALLBACK_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class PairEncoder:
    """Tokenizes (query, doc) pairs with longest-first truncation and no padding."""

    tokenizer: Tokenizer
    max_length: int
    pad_id: int

    @classmethod
    def from_dir(cls, model_dir: Path, max_length: int | None = None,
                 graph: Callable[[], GraphPositions | None] | None = None) -> PairEncoder:
        """Load tokenizer.json and the limits from tokenizer_config.json and config.json.

        `graph` is asked for the position table only when config.json does not give the positions.
        """
        from tokenizers import Tokenizer

        path = model_dir / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for unparsable files
            raise ModelUnavailable(f"{path}: not a usable tokenizer.json ({exc})") from exc
        tok_config = _read_json(model_dir / "tokenizer_config.json")
        config = _read_json(model_dir / "config.json")
        positions = graph() if graph is not None and position_limit(config) is None else None
        limit = resolve_max_length(tok_config, config, max_length, positions)
        side = "left" if tok_config.get("truncation_side") == "left" else "right"
        # Replace whatever truncation/padding tokenizer.json carries: the reference tokenizes with
        # truncation=longest_first at the model's limit and pads per batch, never to a fixed length.
        tokenizer.no_padding()
        tokenizer.enable_truncation(limit, strategy="longest_first", direction=side)
        return cls(tokenizer, limit, _pad_id(tokenizer, tok_config, config))

    def encode(self, pairs: Sequence[tuple[str, str]]) -> list[Encoding]:
        """Tokenize pairs in one call (the Rust side parallelises it); longer pairs are truncated by tokens.

        Texts far longer than the limit are first cut to `max_length * 64` characters, so that a
        50 MB line costs no more memory than a long document. A token never spans that many
        characters on average, so the kept tokens are the same as without the cut.
        """
        bound = self.max_length * _CHARS_PER_TOKEN_BOUND
        clipped = [(q[:bound], d[:bound]) if len(q) > bound or len(d) > bound else (q, d) for q, d in pairs]
        return self.tokenizer.encode_batch(clipped, add_special_tokens=True)


def _pad_id(tokenizer: Tokenizer, tok_config: dict[str, Any], config: dict[str, Any]) -> int:
    token = tok_config.get("pad_token")
    if isinstance(token, dict):  # older files store AddedToken dicts
        token = token.get("content")
    token_id = tokenizer.token_to_id(token) if isinstance(token, str) else None
    if token_id is not None:
        return int(token_id)
    pad = config.get("pad_token_id")
    return pad if isinstance(pad, int) else 0
