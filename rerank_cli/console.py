"""The stderr console: errors, warnings and (later) progress. stdout is for results only.

rich honours NO_COLOR, FORCE_COLOR and non-TTY streams, so no ANSI codes are written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from .hub import Progress


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


@contextmanager
def download_progress(quiet: bool = False) -> Iterator[Progress | None]:
    """A rich download bar per file on stderr, or None when quiet or stderr is not a terminal."""
    console = err_console()
    if quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bars

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Bars(*columns, console=console, transient=False) as bars:

        def on_file(name: str, total: int | None) -> Callable[[int], None]:
            task = bars.add_task(name, total=total)
            return lambda n: bars.advance(task, n)

        yield on_file
