"""Records -> (query, document) pairs -> scored records: field selection and the two orderings.

`score_stream` keeps input order window by window; `rank` sorts best first, keeping only top-k
candidates in memory when asked to.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from .errors import InputError
from .records.record import OnInvalid, Record, Scored, doc_text
from .records.writers import check_keys

if TYPE_CHECKING:
    from .engine.engine import Reranker

T = TypeVar("T")


def checked(records: Iterable[Record], field: str, on_invalid: OnInvalid = None, *,
            keys: Sequence[str] = ()) -> Iterator[Record]:
    """Records whose document text is usable and that can be written with our `keys` added (see
    `output_keys`); others raise InputError, or go to `on_invalid` and are skipped."""
    for record in records:
        try:
            doc_text(record, field)
            check_keys(record, keys)
        except InputError as err:
            if on_invalid is None:
                raise
            on_invalid(err)
            continue
        yield record


class Counted(Iterator[T]):
    """Counts what passes through, so the CLI can check that every document read was written."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items = iter(items)
        self.count = 0

    def __next__(self) -> T:
        item = next(self._items)
        self.count += 1
        return item


def score_stream(engine: Reranker, query: str, records: Iterable[Record], field: str) -> Iterator[list[Scored]]:
    """Score records window by window, yielding each window in input order as soon as it is done."""
    index = 0
    for window, scores, chunks in engine.stream(query, records, lambda r: doc_text(r, field)):
        yield [Scored(rec, index + i, s, chunk=None if c is None else (c.index, c.start, c.end))
               for i, (rec, s, c) in enumerate(zip(window, scores, chunks, strict=True))]
        index += len(window)


def rank(engine: Reranker, query: str, records: Iterable[Record], field: str, top_k: int | None,
         on_window: Callable[[list[Scored]], None] | None = None) -> list[Scored]:
    """All records (or the `top_k` best) best first, ties in input order, with 1-based ranks."""

    def scored() -> Iterator[tuple[float, int, Scored]]:
        for window in score_stream(engine, query, records, field):
            if on_window is not None:
                on_window(window)
            yield from ((s.score, s.index, s) for s in window)

    flat = scored()
    return [replace(row, rank=n) for n, (_, _, row) in enumerate(best_first(flat, top_k), 1)]


def best_first(scored: Iterable[tuple[float, int, T]], top_k: int | None) -> list[tuple[float, int, T]]:
    """Sort (score, index, payload) best first, ties by input order; keep only `top_k` if given.

    NaN (a model that failed on a pair) ranks after every number, NaNs in input order: the same
    rule as `Reranker.rerank`. With `top_k`, memory holds K candidates, not the whole input.
    """
    if top_k is None:
        return sorted(scored, key=_rank_key)
    return heapq.nsmallest(max(top_k, 0), scored, key=_rank_key)


def _rank_key(entry: tuple[float, int, object]) -> tuple[bool, float, int]:
    score, index = entry[0], entry[1]
    if math.isnan(score):  # NaN compares false with everything: it would scramble any sort it is in
        return True, 0.0, index
    return False, -score, index
