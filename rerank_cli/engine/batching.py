"""Length-sorted batches with dynamic padding, and putting scores back in input order.

Sorting a window by length before cutting it into batches means each batch pads only to its own
longest pair, so short documents do not pay for long ones; the caller never sees the sorted order.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from tokenizers import Encoding

T = TypeVar("T")


def plan_batches(lengths: Sequence[int], batch_size: int, token_budget: int | None = None) -> list[NDArray[np.intp]]:
    """Cut the positions of a window into batches of similar length, longest first.

    A batch holds at most `batch_size` rows and, when `token_budget` is set, at most that many
    padded tokens (rows x longest row), but always at least one row.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[NDArray[np.intp]] = []
    start = 0
    while start < len(order):
        longest = lengths[order[start]]  # rows are sorted longest first
        rows = batch_size
        if token_budget is not None:
            rows = max(1, min(rows, token_budget // max(longest, 1)))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def pad_batch(encodings: Sequence[Encoding], rows: NDArray[np.intp], pad_id: int,
              with_types: bool) -> dict[str, NDArray[np.int64]]:
    """Stack the chosen encodings into padded int64 arrays (padding to this batch's longest row)."""
    width = max(len(encodings[i].ids) for i in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64) if with_types else None
    for r, i in enumerate(rows):
        enc = encodings[i]
        n = len(enc.ids)
        ids[r, :n] = enc.ids
        mask[r, :n] = 1
        if types is not None:
            types[r, :n] = enc.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        arrays["token_type_ids"] = types
    return arrays


def windows(items: Iterable[T], size: int, max_wait: float | None = None) -> Iterator[list[T]]:
    """Group a stream into lists of at most `size`; holds one window (plus a small read-ahead) at a time.

    With `max_wait`, items are read by a background thread and a partial window is released when
    no new item has come for `max_wait` seconds, so a slow producer (a pipe fed by hand or by a
    search engine) sees its results without waiting for a full window or the end of input.
    """
    if max_wait is None:
        yield from _windows(iter(items), size)
    else:
        yield from _timed_windows(items, size, max_wait)


def _windows(items: Iterator[T], size: int) -> Iterator[list[T]]:
    window: list[T] = []
    for item in items:
        window.append(item)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


# A wait with no timeout is not woken by a signal that the kernel handed to another thread: CPython
# runs signal handlers in the main thread only and notices a signal received elsewhere when it next
# takes the GIL. Waiting in slices bounds how late Ctrl-C or SIGTERM can be seen.
_WAIT_SLICE = 0.1
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Feed(Generic[T]):
    """An iterator run in a daemon thread into a bounded queue; its exception is re-raised in order.

    The thread blocks SIGINT and SIGTERM, so the kernel delivers them to the main thread, which
    handles them; threads the feed starts (the tokenizer's pool) inherit that mask.
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self._items = items
        threading.Thread(target=self._produce, name="rerank-feed", daemon=True).start()

    def _produce(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for item in self._items:
                self._queue.put((True, item))
            self._queue.put((False, None))
        except BaseException as exc:  # handed to the consumer, re-raised there after what came before
            self._queue.put((False, exc))

    def get(self, timeout: float | None = None) -> tuple[bool, T]:
        """(True, item), or (False, _) at the end; raises queue.Empty after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            try:
                more, item = self._queue.get(timeout=max(left, 0.0))
                break
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
        if not more and item is not None:
            raise item
        return more, item


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Compute up to `depth` items ahead in a background thread (e.g. tokenize while the model runs)."""
    feed = _Feed(items, depth)
    while True:
        more, item = feed.get()
        if not more:
            return
        yield item


def _timed_windows(items: Iterable[T], size: int, max_wait: float) -> Iterator[list[T]]:
    feed = _Feed(items, 2 * size)
    window: list[T] = []
    while True:
        try:
            more, item = feed.get(timeout=max_wait if window else None)
        except queue.Empty:
            yield window  # the producer is slow: release what is here
            window = []
            continue
        except BaseException:
            if window:
                yield window  # records before a bad one are complete: they are written first
            raise
        if not more:
            if window:
                yield window
            return
        window.append(item)
        if len(window) >= size:
            yield window
            window = []
