"""Records -> (query, document) pairs -> scored records: field selection and the two orderings.

`score_stream` keeps input order window by window; `rank` sorts best first, keeping only top-k
candidates in memory when asked to.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .errors import InputError
from .readers import Record

if TYPE_CHECKING:
    from .engine import Reranker

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scored:
    """A record with its 0-based position across all inputs, its score and (for rerank) its rank."""

    record: Record
    index: int
    score: float
    rank: int | None = None


def doc_text(record: Record, field: str) -> str:
    """The document text of a record: the line itself, a bare JSON string, or `record[field]`."""
    data = record.data
    if isinstance(data, str):
        return data
    if field not in data:
        keys = ", ".join(list(data)[:8]) or "none"
        raise InputError(f"{record.where()}: no {field!r} field (fields: {keys}); name the text field with --field")
    value = data[field]
    if not isinstance(value, str):
        raise InputError(f"{record.where()}: field {field!r} is {type(value).__name__}, not a string")
    return value


def score_stream(engine: Reranker, query: str, records: Iterable[Record], field: str) -> Iterator[list[Scored]]:
    """Score records window by window, yielding each window in input order as soon as it is done."""
    index = 0
    for chunk, scores in engine.stream(query, records, lambda r: doc_text(r, field)):
        yield [Scored(rec, index + i, s) for i, (rec, s) in enumerate(zip(chunk, scores, strict=True))]
        index += len(chunk)


def rank(engine: Reranker, query: str, records: Iterable[Record], field: str, top_k: int | None) -> list[Scored]:
    """All records (or the `top_k` best) best first, ties in input order, with 1-based ranks."""
    flat = ((s.score, s.index, s.record) for window in score_stream(engine, query, records, field) for s in window)
    return [Scored(rec, idx, sc, rank=n) for n, (sc, idx, rec) in enumerate(best_first(flat, top_k), 1)]


def best_first(scored: Iterable[tuple[float, int, T]], top_k: int | None) -> list[tuple[float, int, T]]:
    """Sort (score, index, payload) best first, ties by input order; keep only `top_k` if given.

    With `top_k`, memory holds K candidates, not the whole input.
    """
    if top_k is None:
        return sorted(scored, key=lambda s: (-s[0], s[1]))
    if top_k <= 0:
        return []
    heap: list[tuple[float, int, int, T]] = []  # min-heap on (score, -index): the root is the worst kept
    for score, index, payload in scored:
        entry = (score, -index, index, payload)
        if len(heap) < top_k:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    return [(s, i, p) for s, _, i, p in sorted(heap, key=lambda e: (-e[0], e[2]))]
