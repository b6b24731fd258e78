"""The cross-encoder: (query, document) pairs -> relevance scores. A library: no terminal code.

    >>> from rerank_cli import Reranker
    >>> Reranker("./my-model").score("capital of france", ["Paris is...", "Berlin is..."])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import ArgumentTypeError, UsageError
from ..store.hub import Progress, resolve
from ..store.registry import DEFAULT_MODEL, ModelFiles, local_model
from .activation import Activation, declared_activation, effective, to_scores
from .batching import pad_batch, plan_batches, prefetch, windows
from .chunking import DEFAULT_MAX_CHUNKS, DEFAULT_OVERLAP, Chunk, Chunker, LongDocs, Plan, best
from .encoding import PairEncoder
from .openvino import Precision
from .session import check_precision, check_threads, graph_positions, open_session

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from tokenizers import Encoding

T = TypeVar("T")
# Measured on 2-core Zen 5 with MiniLM-L6 (benchmarks/): batches of ~768 padded tokens keep the
# working set in cache and beat large batches by 2-3x; the row cap only matters for tiny pairs.
DEFAULT_BATCH_SIZE = 64
DEFAULT_BATCH_TOKENS = 768
DEFAULT_WINDOW = 256  # pairs sorted together by length; also how often streamed output appears
STALL_SECONDS = 0.2  # a stream that pauses this long gets the window it has scored and written


class Reranker:
    """One cross-encoder model loaded for scoring (query, document) pairs on one execution provider.

    Scores follow the model's own output function by default (`activation="auto"`: what
    sentence-transformers' CrossEncoder returns for it); `"none"` gives raw logits, `"sigmoid"`
    probabilities computed in float64, so that high scores do not saturate into ties.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, provider: str | None = None,
                 threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 batch_tokens: int = DEFAULT_BATCH_TOKENS, max_length: int | None = None,
                 onnx_file: str | None = None, variant: str | None = None, revision: str | None = None,
                 cache_dir: str | Path | None = None, offline: bool = False, refresh: bool = False,
                 activation: Activation | str = Activation.auto, sigmoid: bool | None = None,
                 long_docs: LongDocs | str = LongDocs.truncate, chunk_overlap: int | None = None,
                 max_chunks: int | None = None, precision: Precision | str = Precision.fp32,
                 progress: Progress | None = None) -> None:
        """Load a model: a local directory, a registry name or a hub repo id (pulled on first use).

        A cached model loads with no network request; `offline=True` (or HF_HUB_OFFLINE=1) never
        touches the network, and `refresh=True` checks the hub for a newer revision.
        `long_docs="chunk"` scores a document longer than the limit by its best window (see chunking.py)
        of the room the query leaves, windows overlapping by `chunk_overlap` tokens (default 80), at most
        `max_chunks` (default 16) per document.
        """
        if not isinstance(model, (str, os.PathLike)):
            raise ArgumentTypeError(f"model must be a str or a path, not {_kind(model)}")
        _check_options(provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
                       max_length=max_length, precision=precision)
        activation, sigmoid = _activation_choice(activation, sigmoid), None
        for name, flag in (("offline", offline), ("refresh", refresh)):
            if not isinstance(flag, bool):
                raise ArgumentTypeError(f"{name} must be True or False, not {_kind(flag)}")
        _long_docs(long_docs, chunk_overlap, max_chunks)
        files = resolve(model, variant=variant, revision=revision, onnx_file=onnx_file, cache=cache_dir,
                        offline=offline, refresh=refresh, progress=progress)
        self._init(files, provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
                   max_length=max_length, activation=activation, sigmoid=sigmoid, long_docs=long_docs,
                   chunk_overlap=chunk_overlap, max_chunks=max_chunks, precision=precision)

    @classmethod
    def from_dir(cls, directory: str | Path, *, onnx_file: str | None = None, **options: Any) -> Reranker:
        """Load a model from a local directory only (tokenizer.json, config.json and an .onnx file)."""
        if not isinstance(directory, (str, os.PathLike)):
            raise ArgumentTypeError(f"directory must be a str or a path, not {_kind(directory)}")
        engine = cls.__new__(cls)
        engine._init(local_model(Path(directory), onnx_file), **options)
        return engine

    def _init(self, files: ModelFiles, *, provider: str | None = None, threads: int | None = None,
              batch_size: int = DEFAULT_BATCH_SIZE, batch_tokens: int = DEFAULT_BATCH_TOKENS,
              max_length: int | None = None, activation: Activation | str = Activation.auto,
              sigmoid: bool | None = None, long_docs: LongDocs | str = LongDocs.truncate,
              chunk_overlap: int | None = None, max_chunks: int | None = None,
              precision: Precision | str = Precision.fp32) -> None:
        self.precision = _check_options(provider=provider, threads=threads, batch_size=batch_size,
                                        batch_tokens=batch_tokens, max_length=max_length, precision=precision)
        self.long_docs, overlap, most = _long_docs(long_docs, chunk_overlap, max_chunks)
        self.files = files
        self.encoder = PairEncoder.from_dir(files.directory, None if max_length is None else int(max_length),
                                            graph=lambda: graph_positions(files.onnx))
        self.session = open_session(files.onnx, provider, None if threads is None else int(threads), self.precision)
        self.batch_size = int(batch_size)
        self.batch_tokens = int(batch_tokens)
        self.truncated = 0  # pairs cut to max_length so far (the CLI warns once, at the end)
        self.chunked = 0  # documents scored by windows so far (long_docs="chunk")
        self.chunker = Chunker(self.encoder, overlap, most) if self.long_docs is LongDocs.chunk else None
        self.requested = _activation_choice(activation, sigmoid)
        # Only `auto` reads the model's declaration: an explicit choice works whatever the files say.
        self.declared = declared_activation(files.directory)[0] if self.requested is Activation.auto else None

    @property
    def activation(self) -> str:
        """The output function applied: none, sigmoid, softmax (two labels) or none (logit difference)."""
        return effective(self.requested, self.declared, self.session.labels or 1)

    @property
    def max_length(self) -> int:
        """The pair length limit in tokens (longer pairs are truncated longest-first)."""
        return self.encoder.max_length

    def score_pairs(self, pairs: Iterable[tuple[str, str]]) -> NDArray[np.floating]:
        """Score many (query, doc) pairs (any iterable of 2-item sequences); one score per pair, in input order."""
        return self._score_pairs(_checked_pairs(pairs))

    def score(self, query: str, docs: Iterable[str]) -> NDArray[np.floating]:
        """Score documents (a list or any iterable of str) against one query; one score each, in input order."""
        _check_text("query", query)
        return self._score_pairs((query, d) for d in _checked_texts("docs", docs))

    def rerank(self, query: str, docs: Iterable[str], top_k: int | None = None) -> list[tuple[int, float]]:
        """(index, score) of the documents (or the `top_k` best), best first.

        Ties keep input order; NaN scores (a broken model) rank last, in input order, as in the CLI.
        """
        _check_count("top_k", top_k, none="all")
        scores = self.score(query, docs)
        # A stable sort of the negated scores: NaN sorts after every number, ties stay in input order.
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(int(i), float(scores[i])) for i in order]

    def _score_pairs(self, pairs: Iterable[tuple[str, str]]) -> NDArray[np.floating]:
        parts = [self._finish(*self._encode_window(w))[0] for w in windows(pairs, DEFAULT_WINDOW)]
        if not parts:
            return np.zeros(0, dtype=np.float32 if self.activation == "none" else np.float64)
        return np.concatenate(parts)

    def stream(self, query: str | Callable[[T], str], items: Iterable[T], text: Callable[[T], str],
               window: int = DEFAULT_WINDOW) -> Iterator[tuple[list[T], list[float], list[Chunk | None]]]:
        """Score a stream window by window: yields each window's items with their scores, in order.

        `query` is one query for every item, or a function giving each item's own (many requests
        then share one window, so their pairs are batched together). Only one window is held at a
        time, so memory stays flat however long the input is. Scores come as Python floats (float32
        logits at their shortest exact decimal form), each with the best window of a document scored
        by windows (`long_docs="chunk"`), else None.
        """
        ask: Callable[[T], str] = query if callable(query) else (lambda item: query)
        return self.stream_pairs(items, lambda item: (ask(item), text(item)), window)

    def stream_pairs(self, items: Iterable[T], pair: Callable[[T], tuple[str, str]],
                     window: int = DEFAULT_WINDOW) -> Iterator[tuple[list[T], list[float], list[Chunk | None]]]:
        """`stream` with a (query, document) pair per item: many queries share one token-budget batcher."""
        def tokenized() -> Iterator[tuple[list[T], list[Encoding], Plan | None]]:
            for group in windows(items, window, max_wait=STALL_SECONDS):
                yield group, *self._encode_window([pair(item) for item in group])

        # The next window is read and tokenized (and chunked) in a background thread while this one runs.
        for group, encodings, plan in prefetch(tokenized(), depth=1):
            scores, chunks = self._finish(encodings, plan)
            yield group, as_floats(scores), chunks

    def _encode_window(self, pairs: list[tuple[str, str]]) -> tuple[list[Encoding], Plan | None]:
        """The encodings to run for a window of pairs: one per pair, or with chunking one per window."""
        if self.chunker is None:
            return self._encode(pairs), None
        plan = self.chunker.plan(pairs)
        encodings = self.encoder.encode(plan.pairs)
        # A document counts as truncated when text past max_chunks went unscored or the query was cut.
        cut = np.asarray(plan.cut, dtype=bool)
        cut[[plan.owners[j] for j, e in enumerate(encodings) if e.overflowing]] = True
        self.truncated += int(cut.sum())
        self.chunked += plan.chunked
        return encodings, plan

    def _finish(self, encodings: list[Encoding], plan: Plan | None) -> tuple[NDArray[np.floating], list[Chunk | None]]:
        """Scores per document (the best window's, with chunking) and the best windows."""
        scores = self._run(encodings)
        if plan is None:
            return scores, [None] * len(scores)
        return best(scores, plan)

    def _encode(self, pairs: list[tuple[str, str]]) -> list[Encoding]:
        encodings = self.encoder.encode(pairs)
        self.truncated += sum(1 for e in encodings if e.overflowing)
        return encodings

    def _run(self, encodings: list[Encoding]) -> NDArray[np.floating]:
        lengths = [len(e.ids) for e in encodings]
        logits: NDArray[np.float32] | None = None
        with_types = self.session.wants_token_types
        for rows in plan_batches(lengths, self.batch_size, self.batch_tokens):
            batch = self.session.run(pad_batch(encodings, rows, self.encoder.pad_id, with_types))
            if logits is None:
                logits = np.empty((len(encodings), batch.shape[1]), dtype=np.float32)
            logits[rows] = batch
        if logits is None:
            logits = np.empty((0, 1), dtype=np.float32)
        return to_scores(logits, self.requested, self.declared)


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str, not {_kind(value)}")


def _checked_texts(name: str, texts: Any) -> Iterator[str]:
    """The texts of a list or any iterable, each checked to be a str (the error names its index)."""
    if isinstance(texts, (str, bytes)):
        raise ArgumentTypeError(f"{name} must be an iterable of str (a list, say), not a {_kind(texts)}: "
                                "wrap a single document in a list")
    try:
        items = iter(texts)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an iterable of str (a list, say), not {_kind(texts)}") from None
    for i, text in enumerate(items):
        _check_text(f"{name}[{i}]", text)
        yield text


def _checked_pairs(pairs: Any) -> Iterator[tuple[str, str]]:
    """(query, doc) pairs from any iterable of 2-item sequences, each checked (the error names its index)."""
    for i, pair in enumerate(_checked_items("pairs", pairs)):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__"):
            raise ArgumentTypeError(f"pairs[{i}] must be a (query, document) pair, not {_kind(pair)}")
        if len(pair) != 2:
            raise ArgumentTypeError(f"pairs[{i}] must be a (query, document) pair, not {len(pair)} items")
        query, doc = pair
        _check_text(f"pairs[{i}][0]", query)
        _check_text(f"pairs[{i}][1]", doc)
        yield query, doc


def _checked_items(name: str, items: Any) -> Iterator[Any]:
    if isinstance(items, (str, bytes)):
        raise ArgumentTypeError(f"{name} must be an iterable of (query, document) pairs, not a {_kind(items)}")
    try:
        return iter(items)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an iterable of (query, document) pairs, not {_kind(items)}") from None


def _check_count(name: str, value: Any, *, none: str | None = None, least: int = 1) -> None:
    """An int of at least `least` (numpy ints too, never a bool), or None where `none` says what it means."""
    if value is None and none is not None:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be an int{' or None' if none else ''}, not {_kind(value)}")
    if value < least:
        raise UsageError(f"{name}={value} is too small: use {least} or more"
                         f"{f' (or None for {none})' if none else ''}", param=name)


def _long_docs(long_docs: Any, chunk_overlap: Any, max_chunks: Any) -> tuple[LongDocs, int, int]:
    """(the long-document mode, the overlap, the most windows per document), checked."""
    try:
        mode = LongDocs(long_docs)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in LongDocs)
        raise UsageError(f"long_docs {long_docs!r} is not one of {choices}", param="long_docs") from None
    _check_count("chunk_overlap", chunk_overlap, none="the default, 80", least=0)
    _check_count("max_chunks", max_chunks, none="the default, 16")
    if mode is LongDocs.truncate:
        given = [name for name, value in (("chunk_overlap", chunk_overlap), ("max_chunks", max_chunks))
                 if value is not None]
        if given:
            raise UsageError(f"{' and '.join(given)} apply only with long_docs='chunk'", param=given[0])
    overlap = DEFAULT_OVERLAP if chunk_overlap is None else int(chunk_overlap)
    most = DEFAULT_MAX_CHUNKS if max_chunks is None else int(max_chunks)
    return mode, overlap, most


def _check_options(*, provider: Any, threads: Any, batch_size: Any, batch_tokens: Any, max_length: Any,
                   precision: Any) -> Precision:
    """Check the engine's options before any file is read, so a bad value never costs a download."""
    _check_count("batch_size", batch_size)
    _check_count("batch_tokens", batch_tokens)
    _check_count("max_length", max_length, none="the model's own", least=4)
    check_threads(threads)
    if provider is not None and not isinstance(provider, str):
        raise ArgumentTypeError(f"provider must be a str such as 'cpu', not {_kind(provider)}")
    return check_precision(provider, precision)


def _activation_choice(activation: Activation | str, sigmoid: bool | None) -> Activation:
    """activation=, or the deprecated sigmoid= (a warning; a contradiction of the two is an error)."""
    try:
        chosen = Activation(activation)
    except ValueError:
        choices = ", ".join(repr(a.value) for a in Activation)
        raise UsageError(f"activation {activation!r} is not one of {choices}") from None
    if sigmoid is None:
        return chosen
    warnings.warn("sigmoid= is deprecated; use activation='sigmoid' or 'none'", DeprecationWarning, stacklevel=3)
    wanted = Activation.sigmoid if sigmoid else Activation.none
    if chosen not in (Activation.auto, wanted):
        raise UsageError(f"sigmoid={sigmoid} contradicts activation={chosen.value!r}; give activation= alone")
    return wanted


def as_floats(scores: NDArray[np.floating]) -> list[float]:
    """Python floats for writers; float32 values keep their shortest exact decimal (0.5, not 0.500000011)."""
    if scores.dtype == np.float32:
        return [float(s) for s in scores.astype(str)]
    return scores.tolist()
