"""The pair tokenizer: (query, doc) -> token ids exactly as the model was trained to see them.

The tokenizer's own post-processor builds the pair (`[CLS] q [SEP] d [SEP]` with token types for
BERT, `<s> q </s></s> d </s>` for XLM-R); we only control truncation and padding, which published
tokenizer.json files often bake in for other purposes and which must not leak into scores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
# Pre-cut: texts are bounded at 64 characters per token of the limit, not counting whitespace and
# invisible characters the tokenizer drops; a text that still gives too few tokens (one huge unknown
# word) gets 4x more, up to 16x, so memory stays bounded however long a line is.
_CHARS_PER_TOKEN_BOUND = 64
_MAX_GROWTH = 16
_SHRINK_RUN = 8  # runs of this many silent characters or more are shrunk to what they mean
_CHUNK = 1 << 16  # a long text is shrunk piece by piece, so a 50 MB line is never copied whole
_PROBE_CONTEXTS = ("a{}b", "{}a", "a{}", "1.{}.2")


def read_json(path: Path) -> dict[str, Any]:
    """A model's JSON config file as a dict ({} when absent); an unreadable one is a model error."""
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
            raise UsageError(f"max_length={requested} exceeds the {positions} tokens the model's position "
                             f"embeddings hold; use at most {positions}", param="max_length")
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
    left: bool = False  # truncation_side "left": the kept tokens are the last ones
    probed: list[Silence | None] = field(default_factory=list, compare=False, repr=False)

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
        tok_config = read_json(model_dir / "tokenizer_config.json")
        config = read_json(model_dir / "config.json")
        positions = graph() if graph is not None and position_limit(config) is None else None
        limit = resolve_max_length(tok_config, config, max_length, positions)
        side = "left" if tok_config.get("truncation_side") == "left" else "right"
        # Replace whatever truncation/padding tokenizer.json carries: the reference tokenizes with
        # truncation=longest_first at the model's limit and pads per batch, never to a fixed length.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        follow_sentencepiece(tokenizer)  # it changes what whitespace means
        tokenizer.enable_truncation(limit, strategy="longest_first", direction=side)
        return cls(tokenizer, limit, _pad_id(tokenizer, tok_config, config), side == "left")

    @property
    def silence(self) -> Silence | None:
        """What this tokenizer makes of whitespace and invisible runs, probed on first need.

        Only texts past the pre-cut bound need it, so most loads never pay the probe (~5-15 ms and
        a few thousand encodings). The probe asks an untruncated copy of the tokenizer.
        """
        if not self.probed:
            from tokenizers import Tokenizer

            untruncated = Tokenizer.from_str(self.tokenizer.to_str())
            untruncated.no_truncation()
            self.probed.append(Silence.probe(untruncated))  # two threads may both probe: same answer
        return self.probed[0]

    def encode(self, pairs: Sequence[tuple[str, str]]) -> list[Encoding]:
        """Tokenize pairs in one call (the Rust side parallelises it); longer pairs are truncated by tokens.

        Texts far longer than the limit are first cut (see `fit`), so that a 50 MB line costs no
        more memory than a long document, without changing the tokens that are kept.
        """
        bound = self.max_length * _CHARS_PER_TOKEN_BOUND
        fitted = [(self.fit(q), self.fit(d)) if len(q) > bound or len(d) > bound else (q, d) for q, d in pairs]
        return self.tokenizer.encode_batch(fitted, add_special_tokens=True)

    def fit(self, text: str) -> str:
        """The part of `text` that holds every token truncation can keep, with silent runs shrunk.

        The cut is at 64 characters per token of the limit, counted after runs of whitespace and
        invisible characters are shrunk to what they mean to this tokenizer (a space or nothing), and
        at a whitespace where there is one, so no word is split. A cut that still gives fewer tokens
        than the limit (a huge unknown word is one token) is retried with 4x more characters.
        """
        bound = self.max_length * _CHARS_PER_TOKEN_BOUND
        while True:
            cut, whole = self._cut(text, bound)
            if whole or bound >= _MAX_GROWTH * self.max_length * _CHARS_PER_TOKEN_BOUND:
                return cut
            # The tokenizer truncates this count at max_length: reaching it means enough tokens.
            if len(self.tokenizer.encode(cut, add_special_tokens=False).ids) >= self.max_length:
                return cut
            bound *= 4

    def _cut(self, text: str, bound: int) -> tuple[str, bool]:
        """(at most `bound` characters from the kept end of the shrunk text, whether that is all of it)."""
        if len(text) <= bound:
            return text, True
        starts = range(0, len(text), _CHUNK)
        silence = self.silence
        pieces: list[str] = []
        size = 0
        for start in reversed(starts) if self.left else starts:
            piece = text[start:start + _CHUNK]
            piece = silence.shrink(piece) if silence is not None else piece
            pieces.append(piece)
            size += len(piece)
            if size > bound:
                break
        else:
            return "".join(reversed(pieces) if self.left else pieces), True
        if self.left:
            kept = "".join(reversed(pieces))[-bound:]
            space = next((i for i in range(len(kept) // 2) if kept[i].isspace()), None)
            return (kept if space is None else kept[space:]), False
        kept = "".join(pieces)[:bound]
        space = next((i for i in range(len(kept) - 1, len(kept) // 2, -1) if kept[i].isspace()), None)
        return (kept if space is None else kept[:space]), False


# Whitespace, control and format characters of the BMP and the plane-14 tags (Unicode 14): what tokenizers
# drop or read as a space, the candidates the probe asks about. A constant, because finding them means
# scanning 65k code points (~12 ms a load). A character missing here is only never shrunk, which keeps
# the tokens exact; the probe asks the tokenizer about each one, so a wrong one is never shrunk either.
_SILENT_RANGES = ((0x0000, 0x0020), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
                  (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x1680, 0x1680),
                  (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F),
                  (0x3000, 0x3000), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0xE0001, 0xE0001), (0xE0020, 0xE007F))


def silent_candidates() -> str:
    """The characters the silence probe asks the tokenizer about (see _SILENT_RANGES)."""
    return "".join(chr(c) for first, last in _SILENT_RANGES for c in range(first, last + 1))


@dataclass(frozen=True, slots=True)
class Silence:
    """What one tokenizer makes of whitespace and invisible characters, found by asking it at load time.

    Some characters tokenize exactly like one space wherever they are and however many there are
    (BERT's and SentencePiece's whitespace), others like nothing at all (BERT drops zero-width and
    control characters). A long run of them can be shrunk to a space or to nothing without changing
    a token. Byte-level BPE gives whitespace runs tokens of their own: nothing is silent there.
    """

    runs: re.Pattern[str]
    spaces: re.Pattern[str]

    @classmethod
    def probe(cls, tokenizer: Tokenizer) -> Silence | None:
        """Ask the tokenizer (truncation off) which characters are silent; None when none are."""
        candidates = silent_candidates()

        def ids_of(fills: Sequence[str]) -> list[tuple[tuple[int, ...], ...]]:
            texts = [ctx.format(fill) for fill in fills for ctx in _PROBE_CONTEXTS]
            encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
            n = len(_PROBE_CONTEXTS)
            return [tuple(tuple(e.ids) for e in encodings[i:i + n]) for i in range(0, len(encodings), n)]

        space, nothing = ids_of([" ", ""])
        # Only runs of _SHRINK_RUN or more are ever shrunk, so runs are what is asked about: a character
        # can be silent in a run but not alone (DeBERTa-v2 turns any run of 2+ whitespace into a space).
        lengths = (_SHRINK_RUN, _SHRINK_RUN + 1, 3 * _SHRINK_RUN + 1)
        seen = ids_of([c * n for c in candidates for n in lengths])
        runs = [seen[i:i + len(lengths)] for i in range(0, len(seen), len(lengths))]
        as_space = "".join(c for c, got in zip(candidates, runs) if all(g == space for g in got))
        as_nothing = "".join(c for c, got in zip(candidates, runs) if all(g == nothing for g in got))
        if not as_space and not as_nothing:
            return None
        silence = cls(re.compile(f"[{re.escape(as_space + as_nothing)}]{{{_SHRINK_RUN},}}"),
                      re.compile(f"[{re.escape(as_space)}]" if as_space else "(?!)"))
        # Mixed runs must shrink as their characters do one by one, or nothing is shrunk at all.
        mixed = [(as_space + as_nothing) * _SHRINK_RUN, (as_nothing + as_space) * _SHRINK_RUN,
                 as_nothing * _SHRINK_RUN]
        if ids_of(mixed) != ids_of([silence.shrink(m) for m in mixed]):
            return None
        return silence

    def shrink(self, text: str) -> str:
        """`text` with each long silent run replaced by one space (if it holds a space-like character) or nothing."""
        return self.runs.sub(lambda m: " " if self.spaces.search(m.group()) else "", text)


def follow_sentencepiece(tokenizer: Tokenizer) -> None:
    """Make a SentencePiece conversion split whitespace as SentencePiece does, which the model was trained on.

    tokenizer.json files converted from a SentencePiece Unigram model (XLM-R, BGE, Jina v2) carry a bare
    Metaspace pre-tokenizer, which turns leading and trailing whitespace into stray `▁` tokens that
    SentencePiece (remove_extra_whitespaces) never produces. Splitting on whitespace first, as
    transformers 5 rebuilds these tokenizers, gives SentencePiece's own ids (tests/test_sentencepiece.py).
    """
    from tokenizers import models, pre_tokenizers

    pre = tokenizer.pre_tokenizer
    if not isinstance(tokenizer.model, models.Unigram) or not isinstance(pre, pre_tokenizers.Metaspace):
        return  # BERT WordPiece, byte-level BPE, or a pipeline that already splits whitespace
    metaspace = pre_tokenizers.Metaspace(replacement=pre.replacement, prepend_scheme=pre.prepend_scheme,
                                         split=pre.split)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace])


def _pad_id(tokenizer: Tokenizer, tok_config: dict[str, Any], config: dict[str, Any]) -> int:
    token = tok_config.get("pad_token")
    if isinstance(token, dict):  # older files store AddedToken dicts
        token = token.get("content")
    token_id = tokenizer.token_to_id(token) if isinstance(token, str) else None
    if token_id is not None:
        return int(token_id)
    pad = config.get("pad_token_id")
    return pad if isinstance(pad, int) else 0
