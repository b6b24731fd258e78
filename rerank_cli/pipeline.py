"""Records -> (query, document) pairs -> scored records: field selection and the two orderings.

`score_stream` keeps input order window by window; `rank` sorts best first, keeping only top-k
candidates in memory when asked to; `answer_stream` scores many requests (query + documents) through
one batcher and answers each, in order, as soon as its last document is scored.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InputError
from .records.record import OnInvalid, Record, Scored, doc_text, report_invalid
from .records.requests import Answer, Request
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
            report_invalid(on_invalid, err)
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


class _Open:
    """A request whose documents are being scored (filled in by the main thread, window by window)."""

    __slots__ = ("request", "scores")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.scores = [math.nan] * len(request.texts)


_NOTHING = -1  # the one placeholder pair of a request with no documents, so that it is answered in turn


def answer_stream(engine: Reranker, requests: Iterable[Request], top_n: int | None = None) -> Iterator[list[Answer]]:
    """Score every request's (query, document) pairs through one token-budget batcher, window by window.

    Pairs of many small requests share a window (and its length-sorted batches), so they run as fast as
    one large request. Yields, after each window, the answers of the requests it completed, in input
    order: memory holds one window of pairs plus the read-ahead, however many requests there are.
    A request's own `top_n` wins over `top_n`.
    """
    def pairs() -> Iterator[tuple[_Open, int]]:
        for request in requests:
            state = _Open(request)
            if not request.texts:
                # An empty request rides along as one tiny ("", "") pair, scored and dropped: it then
                # leaves in order between its neighbours, with nothing held for it on the side.
                yield state, _NOTHING
            yield from ((state, i) for i in range(len(request.texts)))

    def query(item: tuple[_Open, int]) -> str:
        return "" if item[1] == _NOTHING else item[0].request.query

    def text(item: tuple[_Open, int]) -> str:
        return "" if item[1] == _NOTHING else item[0].request.texts[item[1]]

    for group, scores, _windows in engine.stream(query, pairs(), text):
        done = []
        for (state, i), score in zip(group, scores, strict=True):
            if i != _NOTHING:
                state.scores[i] = score
            if i == len(state.scores) - 1 or i == _NOTHING:  # pairs come in order: the last one completes it
                done.append(_answer(state, top_n))
        yield done


def _answer(state: _Open, top_n: int | None) -> Answer:
    limit = state.request.top_n if state.request.top_n is not None else top_n
    ranked = best_first(((s, i, None) for i, s in enumerate(state.scores)), limit)
    return Answer(state.request, [(s, i) for s, i, _ in ranked])


def rank_queries(engine: Reranker, queries: Iterable[tuple[Any, str]], records: Sequence[Record], field: str,
                 top_k: int | None, return_query: bool = False) -> Iterator[list[Scored]]:
    """Rank the held `records` for every (id, text) query, queries in order, each best first with its own
    ranks; each row carries `query_id` (and `query`). All queries' pairs share one batcher."""
    texts = [doc_text(r, field) for r in records]
    requests = (Request(q, texts, records, {"query_id": qid, **({"query": q} if return_query else {})}, "", top_k)
                for qid, q in queries)
    for answers in answer_stream(engine, requests):
        rows: list[Scored] = []
        for answer in answers:
            extra = tuple(answer.request.keys.items())
            rows.extend(Scored(records[i], i, s, rank=n, extra=extra) for n, (s, i) in enumerate(answer.ranked, 1))
        yield rows
