"""The stderr console: errors, warnings and (later) progress. stdout is for results only.

rich honours NO_COLOR, FORCE_COLOR and non-TTY streams, so no ANSI codes are written here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@lru_cache(maxsize=1)
def err_console() -> Console:
    """The one stderr console (created on first use, so `--help` stays fast)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print `rerank: error: ...` as one plain line (markup off: messages quote user text)."""
    err_console().print(f"rerank: error: {message}", markup=False, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """Print `rerank: warning: ...` as one plain line."""
    err_console().print(f"rerank: warning: {message}", markup=False, highlight=False, soft_wrap=True)
