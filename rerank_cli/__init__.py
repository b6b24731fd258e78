"""rerank: score and re-order documents against a query with an ONNX cross-encoder.

The library entry point is `Reranker` (imported lazily, so that `rerank --help` stays fast):

    from rerank_cli import Reranker
    Reranker("./model-dir").score("capital of france", ["Paris is the capital.", "Berlin is..."])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = ["Reranker", "__version__"]

if TYPE_CHECKING:
    from .engine.engine import Reranker


def __getattr__(name: str) -> Any:
    if name == "Reranker":
        from .engine.engine import Reranker

        return Reranker
    raise AttributeError(f"module 'rerank_cli' has no attribute {name!r}")
