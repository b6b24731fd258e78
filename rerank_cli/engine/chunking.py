"""Long documents -> windows with character spans, so a document is scored by its best window.

With `long_docs="chunk"`, a document whose pair with the query exceeds the model's limit is split
into windows that fill the room the query leaves (limit - query tokens - the pair template's special
tokens), consecutive windows overlapping by about `overlap` tokens. Each window is a slice of the
document's own text, cut between words, and is scored as the document would be: so the best
window's text, scored alone, gives exactly the document's score. A document that fits is left
whole, and gets the score `truncate` gives it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where scores are reduced: the CLI imports this module for its enum
    import numpy as np
    from numpy.typing import NDArray
    from tokenizers import Tokenizer

    from .encoding import PairEncoder

# BCEmbedding's reranker, the one local library that scores long documents by their best chunk,
# overlaps its windows by 80 tokens: a passage of up to ~60 words that straddles a cut is still
# seen whole by one window, at a cost of ~1.2 windows per 512-token window's worth of text.
DEFAULT_OVERLAP = 80
# Cohere's v1 `max_chunks_per_doc` defaults to 10; 16 windows cover ~6,000 words at 512 tokens
# (a long report), and bound the cost of one document at 16 pairs.
DEFAULT_MAX_CHUNKS = 16
_CHARS_PER_TOKEN_BOUND = 64  # as encoding.py's pre-cut: more characters than any token needs
_MAX_GROWTH = 16


class LongDocs(str, Enum):
    """What happens to a pair longer than the model's limit."""

    truncate = "truncate"
    chunk = "chunk"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A window of a document: its 0-based number and its character span `text[start:end]`."""

    index: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The pairs to score for a list of (query, document) pairs, and which document each belongs to."""

    pairs: list[tuple[str, str]]
    owners: list[int]  # the document of each pair, non-decreasing
    spans: list[Chunk | None]  # the window of each pair; None for a document scored whole
    chunked: int  # documents split into windows
    cut: list[bool]  # per document: text past max_chunks windows was not scored


def room_for_document(limit: int, specials: int, query_tokens: int) -> int:
    """Tokens left to a document: the limit less the query and the template's special tokens.

    A query so long that it would leave less than half of that is cut to leave the document half
    (the split longest-first truncation gives a long query and a long document); at least 1.
    """
    usable = limit - specials
    return max(usable - query_tokens, usable // 2, 1)


class Chunker:
    """Splits the documents of (query, document) pairs that exceed the limit into word-bounded windows."""

    def __init__(self, encoder: PairEncoder, overlap: int = DEFAULT_OVERLAP,
                 max_chunks: int = DEFAULT_MAX_CHUNKS) -> None:
        from tokenizers import Tokenizer

        self.limit = encoder.max_length
        self.overlap = overlap
        self.max_chunks = max_chunks
        # A copy without truncation: the whole document's tokens and their offsets (same pipeline).
        self.tokenizer: Tokenizer = Tokenizer.from_str(encoder.tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.specials = self.tokenizer.num_special_tokens_to_add(True)
        # Byte-level BPE (RoBERTa, ModernBERT) gives a word other tokens without the space before it,
        # sometimes one or two more; a window, which starts without that space, is kept that far short.
        self.margin = 2 if any(self._ids(w) != self._ids(" " + w) for w in ("the", "world", "capital")) else 0
        self._queries: dict[str, int] = {}

    def plan(self, pairs: Sequence[tuple[str, str]]) -> Plan:
        """The pairs to score: each document whole when it fits, else its windows (at most max_chunks)."""
        out: list[tuple[str, str]] = []
        owners: list[int] = []
        spans: list[Chunk | None] = []
        cut: list[bool] = []
        chunked = 0
        for i, (query, doc) in enumerate(pairs):
            room = max(room_for_document(self.limit, self.specials, self._query_tokens(query)) - self.margin, 1)
            windows, truncated = self.windows(doc, room)
            cut.append(truncated)
            if windows is None:
                out.append((query, doc))
                owners.append(i)
                spans.append(None)
                continue
            chunked += 1
            for chunk in windows:
                out.append((query, doc[chunk.start:chunk.end]))
                owners.append(i)
                spans.append(chunk)
        return Plan(out, owners, spans, chunked, cut)

    def windows(self, text: str, room: int) -> tuple[list[Chunk] | None, bool]:
        """(the windows of `text`, or None when it fits in `room` tokens; whether text was left unscored)."""
        needed = room + (self.max_chunks - 1) * max(room - min(self.overlap, room // 2), 1) + 1
        bound = needed * _CHARS_PER_TOKEN_BOUND
        while True:
            piece, whole = _prefix(text, bound)
            encoding = self.tokenizer.encode(piece, add_special_tokens=False)
            if whole or len(encoding.ids) >= needed or bound >= _MAX_GROWTH * needed * _CHARS_PER_TOKEN_BOUND:
                break
            bound *= 4  # mostly whitespace or huge unknown words: fewer tokens than characters suggest
        offsets = encoding.offsets
        n = len(offsets)
        if (n <= room and whole) or n == 0:  # fits; or whitespace as far as read: truncation then decides
            return None, False
        spans = split(word_starts(piece, offsets, encoding.word_ids), n, room, self.overlap, self.max_chunks)
        chunks = [Chunk(k, *_stripped(piece, offsets[s][0], max(offsets[t][1] for t in range(s, e))))
                  for k, (s, e) in enumerate(spans)]
        return chunks, not whole or spans[-1][1] < n

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _query_tokens(self, query: str) -> int:
        count = self._queries.get(query)
        if count is None:
            if len(self._queries) > 1024:  # one query per request in batch work: keep the cache small
                self._queries.clear()
            count = len(self._ids(query))
            self._queries[query] = count
        return count


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the whitespace some tokenizers count into a word's first or last token."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _prefix(text: str, bound: int) -> tuple[str, bool]:
    """(the first `bound` characters of `text`, cut at a whitespace in their second half if any; whether whole).

    Unlike the truncating pre-cut this never rewrites the text, so character offsets stay those of
    the document.
    """
    if len(text) <= bound:
        return text, True
    head = text[:bound]
    space = max(head.rfind(c) for c in " \n\t\r")
    return (head[:space] if space > bound // 2 else head), False


@dataclass(frozen=True, slots=True)
class Boundaries:
    """Token positions where a window may start or end: after whitespace (best), between words, anywhere."""

    spaced: list[int]
    words: list[int]


def word_starts(text: str, offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None]) -> Boundaries:
    """The first token of each word (the tokenizer's own words), and those that follow whitespace."""
    spaced: list[int] = []
    words: list[int] = []
    for t in range(1, len(offsets)):
        if word_ids[t] != word_ids[t - 1]:
            words.append(t)
            start = offsets[t][0]  # byte-level BPE and some SentencePiece files count the space in
            if start > 0 and (text[start - 1].isspace() or text[start].isspace()):
                spaced.append(t)
    return Boundaries(spaced, words)


def split(bounds: Boundaries, n: int, room: int, overlap: int, max_chunks: int) -> list[tuple[int, int]]:
    """Token spans [start, end) of at most `room` tokens covering 0..n, at most `max_chunks` of them.

    Windows are cut after whitespace where there is some, else between the tokenizer's own words
    (punctuation, CJK characters), else (one word longer than the room) between tokens. Each ends
    at the last such cut that fits (past the previous window's end), the last that fills at least
    half the room if any. The next starts `overlap` tokens (at most half the room) before the end,
    moved back to a cut, so consecutive windows share at least `overlap` tokens unless the text
    there has no whitespace to cut at.
    """
    overlap = min(overlap, room // 2)
    spans: list[tuple[int, int]] = []
    start = end = 0
    while len(spans) < max_chunks:
        if n - start <= room:
            spans.append((start, n))
            break
        high = start + room
        low = max(start, end) + 1  # a window that ends no further than the last one adds nothing
        good = max(high - room // 2, low)
        end = _last([(bounds.spaced, good), (bounds.spaced, low), (bounds.words, good), (bounds.words, low)],
                    high) or high
        spans.append((start, end))
        target = max(end - overlap, start + 1)
        half = target - (target - start) // 2
        # Not so far back that the next window cannot reach the whitespace after this one's end.
        reach = max((_first_after(bounds.spaced, end, n) or n) - room, start + 1)
        start = (_last([(bounds.spaced, max(half, reach)), (bounds.spaced, reach)], target)
                 or _first_after(bounds.spaced, target, end)
                 or _last([(bounds.words, half), (bounds.words, start + 1)], target)
                 or _first_after(bounds.words, target, end) or target)
    return spans


def _last(tiers: Sequence[tuple[list[int], int]], high: int) -> int | None:
    """The last boundary at most `high` of the first (boundaries, least) tier that has one at least `least`."""
    for tier, least in tiers:
        i = bisect_right(tier, high)
        if i and tier[i - 1] >= least:
            return tier[i - 1]
    return None


def _first_after(tier: list[int], position: int, most: int) -> int | None:
    """The first boundary after `position`, if it is at most `most`."""
    i = bisect_right(tier, position)
    return tier[i] if i < len(tier) and tier[i] <= most else None


def best(scores: NDArray[np.floating], plan: Plan) -> tuple[NDArray[np.floating], list[Chunk | None]]:
    """Each document's score (the maximum over its windows) and its best window (None when scored whole).

    The activation is monotonic, so the maximum of activated scores is the activated maximum. The
    first of equal windows wins; a NaN window (a broken model) makes the document NaN.
    """
    import numpy as np

    out = np.empty(len(plan.cut), dtype=scores.dtype)
    chosen: list[Chunk | None] = [None] * len(plan.cut)
    owners = plan.owners
    first = 0
    while first < len(owners):
        doc = owners[first]
        last = first + 1
        while last < len(owners) and owners[last] == doc:
            last += 1
        pick = first + int(np.argmax(scores[first:last]))  # argmax returns the first NaN, if any
        out[doc] = scores[pick]
        chosen[doc] = plan.spans[pick]
        first = last
    return out, chosen
