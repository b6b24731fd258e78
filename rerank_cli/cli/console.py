"""The stderr console: errors, warnings and (later) progress. stdout is for results only.

rich honours NO_COLOR, FORCE_COLOR and non-TTY streams, so no ANSI codes are written here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from ..errors import InputError
    from ..records.record import Scored
    from ..store.hub import Progress


@lru_cache(maxsize=1)
def err_console() -> Console:
    """The one stderr console (created on first use, so `--help` stays fast)."""
    from rich.console import Console

    class ErrConsole(Console):
        def on_broken_pipe(self) -> None:
            # stderr's reader went away (`2>&1 | head`): nothing more can be told, and rich's own
            # answer (exit 1) would hide the run's exit code. Stay silent from here on.
            self.quiet = True

    return ErrConsole(stderr=True, highlight=False, emoji=False)  # messages quote user text: `:smile:` stays text


def error(message: str) -> None:
    """Print `rerank: error: ...` as one plain line (markup off: messages quote user text)."""
    _line(f"rerank: error: {message}")


def say(message: str) -> None:
    """Print `rerank: ...`: what rerank chose or did, for people (stderr, never stdout)."""
    _line(f"rerank: {message}")


def warn(message: str) -> None:
    """Print `rerank: warning: ...` as one plain line."""
    _line(f"rerank: warning: {message}")


def stdin_notice(paths: Sequence[str], quiet: bool = False) -> None:
    """Say on stderr that documents are read from the terminal, so that waiting there is not a silent hang."""
    if quiet or "-" not in paths or sys.stdin is None or not sys.stdin.isatty():
        return
    end = "Ctrl-Z then Enter" if os.name == "nt" else "Ctrl-D"
    _line(f"rerank: reading documents from stdin, one per line; end with {end} (or give a FILE)")


def _line(text: str) -> None:
    # When stderr itself is closed or full nothing is left to tell: the exit code still says it.
    with suppress(OSError):
        err_console().print(text, markup=False, highlight=False, soft_wrap=True)


def _maybe_terminal() -> bool:
    """False when stderr is surely no terminal for rich (not a TTY, no variable forcing one): then no bar
    is drawn and rich, ~20 ms of imports, is not loaded for it. True leaves the decision to rich."""
    forced = any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"))
    try:
        return forced or (sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return forced


@contextmanager
def download_progress(quiet: bool = False) -> Iterator[Progress | None]:
    """A rich download bar per file on stderr, or None when quiet or stderr is not a terminal."""
    if quiet or not _maybe_terminal():
        yield None
        return
    console = err_console()
    if not console.is_terminal:
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


@contextmanager
def score_progress(total_bytes: int | None, quiet: bool = False) -> Iterator[Callable[[list[Scored]], None]]:
    """A documents/s bar on stderr (with ETA when the input size is known); a no-op off a terminal."""
    if quiet or not _maybe_terminal():
        yield lambda window: None
        return
    console = err_console()
    if not console.is_terminal:
        yield lambda window: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("scoring"), BarColumn(), TextColumn("{task.fields[docs]:,} docs"),
               TextColumn("{task.fields[rate]:,.0f} docs/s"), TimeElapsedColumn()]
    if total_bytes:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        task = bars.add_task("scoring", total=total_bytes or None, docs=0, rate=0.0)
        state = {"docs": 0}

        def advance(window: list[Scored]) -> None:
            state["docs"] += len(window)
            elapsed = bars.tasks[0].elapsed or 1e-9
            bars.update(task, advance=sum(s.record.nbytes for s in window), docs=state["docs"],
                        rate=state["docs"] / elapsed)

        yield advance


class SkipReport:
    """`--skip-invalid`: one stderr line per skipped record, and a count at the end.

    Both are printed even with --quiet: a skipped record is data left out of the output, and these
    lines are the record of it that `2> skipped.log` keeps.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, err: InputError) -> None:
        self.count += 1
        warn(f"skipped {err}")

    def summary(self) -> None:
        """The closing count."""
        if self.count:
            warn(f"skipped {self.count} invalid record{'s' if self.count != 1 else ''} (--skip-invalid)")
