"""The cross-encoder: (query, document) pairs -> relevance scores. A library: no terminal code.

    >>> from rerank_cli import Reranker
    >>> Reranker("./my-model").score("capital of france", ["Paris is...", "Berlin is..."])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import UsageError
from ..store.hub import Progress, resolve
from ..store.registry import DEFAULT_MODEL, ModelFiles, local_model
from .batching import pad_batch, plan_batches, prefetch, windows
from .encoding import PairEncoder
from .session import Session

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

    Scores are raw logits by default (what the model outputs); `sigmoid=True` maps them to
    probabilities in float64, so that high scores do not saturate into ties.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, provider: str | None = None,
                 threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 batch_tokens: int = DEFAULT_BATCH_TOKENS, max_length: int | None = None,
                 onnx_file: str | None = None, variant: str | None = None, revision: str | None = None,
                 cache_dir: str | Path | None = None, offline: bool = False, refresh: bool = False,
                 sigmoid: bool = False, progress: Progress | None = None) -> None:
        """Load a model: a local directory, a registry name or a hub repo id (pulled on first use).

        A cached model loads with no network request; `offline=True` (or HF_HUB_OFFLINE=1) never
        touches the network, and `refresh=True` checks the hub for a newer revision.
        """
        files = resolve(model, variant=variant, revision=revision, onnx_file=onnx_file, cache=cache_dir,
                        offline=offline, refresh=refresh, progress=progress)
        self._init(files, provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
                   max_length=max_length, sigmoid=sigmoid)

    @classmethod
    def from_dir(cls, directory: str | Path, *, onnx_file: str | None = None, **options: Any) -> Reranker:
        """Load a model from a local directory only (tokenizer.json, config.json and an .onnx file)."""
        engine = cls.__new__(cls)
        engine._init(local_model(Path(directory), onnx_file), **options)
        return engine

    def _init(self, files: ModelFiles, *, provider: str | None = None, threads: int | None = None,
              batch_size: int = DEFAULT_BATCH_SIZE, batch_tokens: int = DEFAULT_BATCH_TOKENS,
              max_length: int | None = None, sigmoid: bool = False) -> None:
        if batch_size < 1 or batch_tokens < 1:
            raise UsageError(f"batch size and batch tokens must be 1 or more (got {batch_size}, {batch_tokens})")
        self.files = files
        self.encoder = PairEncoder.from_dir(files.directory, max_length)
        self.session = Session(files.onnx, provider, threads)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.truncated = 0  # pairs cut to max_length so far (the CLI warns once, at the end)
        self.sigmoid = sigmoid

    @property
    def max_length(self) -> int:
        """The pair length limit in tokens (longer pairs are truncated longest-first)."""
        return self.encoder.max_length

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> NDArray[np.floating]:
        """Score many (query, doc) pairs; one score per pair, in input order."""
        parts = [self._score_window(list(w)) for w in windows(pairs, DEFAULT_WINDOW)]
        if not parts:
            return np.zeros(0, dtype=np.float64 if self.sigmoid else np.float32)
        return np.concatenate(parts)

    def score(self, query: str, docs: Sequence[str]) -> NDArray[np.floating]:
        """Score documents against one query; one score per document, in input order."""
        return self.score_pairs([(query, d) for d in docs])

    def rerank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        """(index, score) of the documents, best first; ties keep input order."""
        scores = self.score(query, docs)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(int(i), float(scores[i])) for i in order]

    def stream(self, query: str, items: Iterable[T], text: Callable[[T], str],
               window: int = DEFAULT_WINDOW) -> Iterator[tuple[list[T], list[float]]]:
        """Score a stream window by window: yields each window's items with their scores, in order.

        Only one window is held at a time, so memory stays flat however long the input is.
        Scores come as Python floats (float32 logits at their shortest exact decimal form).
        """
        def tokenized() -> Iterator[tuple[list[T], list[Encoding]]]:
            for chunk in windows(items, window, max_wait=STALL_SECONDS):
                yield chunk, self._encode([(query, text(item)) for item in chunk])

        # The next window is read and tokenized in a background thread while this one runs.
        for chunk, encodings in prefetch(tokenized(), depth=1):
            yield chunk, as_floats(self._run(encodings))

    def _score_window(self, pairs: list[tuple[str, str]]) -> NDArray[np.floating]:
        return self._run(self._encode(pairs))

    def _encode(self, pairs: list[tuple[str, str]]) -> list[Encoding]:
        encodings = self.encoder.encode(pairs)
        self.truncated += sum(1 for e in encodings if e.overflowing)
        return encodings

    def _run(self, encodings: list[Encoding]) -> NDArray[np.floating]:
        lengths = [len(e.ids) for e in encodings]
        logits = np.empty(len(encodings), dtype=np.float32)
        with_types = self.session.wants_token_types
        for rows in plan_batches(lengths, self.batch_size, self.batch_tokens):
            logits[rows] = self.session.run(pad_batch(encodings, rows, self.encoder.pad_id, with_types))
        if self.sigmoid:
            return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return logits


def as_floats(scores: NDArray[np.floating]) -> list[float]:
    """Python floats for writers; float32 values keep their shortest exact decimal (0.5, not 0.500000011)."""
    if scores.dtype == np.float32:
        return [float(s) for s in scores.astype(str)]
    return scores.tolist()
