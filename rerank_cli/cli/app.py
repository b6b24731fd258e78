"""The `rerank` command line: options -> stage calls -> exit code. Parses and prints, nothing more.

Heavy libraries (numpy, onnxruntime, tokenizers, huggingface_hub) are imported inside command
bodies so that `rerank --help` and `--version` start fast.

Process-level I/O lives here too: the error funnel turns every failure into one stderr line and its
documented exit code, for every command (present and future) and for the options that act before
one runs (`--version`, `--help`, parse errors); `main` makes stdio safe to use (closed descriptors,
unbuffered stdout) and leaves without finalizing the interpreter (see `_leave`).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn, TextIO

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import EXIT_CODES, OutputError, RerankError, Terminated
from ..records.writers import output_error
from .batch import batch
from .console import err_console, error
from .eval import eval_runs
from .models import models_app
from .options import Command
from .scoring import rerank, score, set_debug

EXIT_CODE_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES)

# Click's error base class, found through a public name: typer bundles its own copy of click in newer
# releases and uses the click package in older ones.
_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def debug_env() -> bool:
    """RERANK_DEBUG turns on tracebacks only when it says so: 1, true, yes or on (not 0, no, off, empty)."""
    return os.environ.get("RERANK_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


class RerankGroup(TyperGroup):
    """The error funnel: every failure becomes one stderr line and its exit code, in CliRunner and the binary.

    `invoke` catches what a command raises (it knows `--debug`); `main` catches what happens outside a
    command (parse errors, eager options such as `--version` writing to a full disk) and flushes stdout
    at the end, so that a failed final write is an error too, not a silent exit 0.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        def run() -> Any:
            return super(RerankGroup, self).main(args, prog_name, complete_var, standalone_mode=False,
                                                 windows_expand_args=windows_expand_args, **extra)

        if not standalone_mode:
            return run()
        sys.exit(_funnel(run))

    def invoke(self, ctx: Any) -> Any:  # typer's bundled click.Context has no public name
        try:
            return super().invoke(ctx)
        except RerankError as err:
            if ctx.meta.get("rerank.debug") or debug_env():
                err_console().print_exception()
            error(err.cli_message())
            if isinstance(err, OutputError):
                _discard_stdout()
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Terminated:
            raise typer.Exit(143) from None
        except BrokenPipeError:
            # The reader went away (`rerank ... | head -1`): stop quietly, as cat and grep do, with
            # 141 (128 + SIGPIPE).
            _discard_stdout()
            raise typer.Exit(141) from None


def _funnel(run: Callable[[], Any]) -> int:
    """Run the app in click's non-standalone mode and return the exit code; stdout is flushed here."""
    try:
        result = run()  # an Exit's code, or the command's return value (None)
        code = result if isinstance(result, int) else 0
        _flush_stdout()
        return code
    except _CLICK_ERROR as err:
        return _usage_error(err)
    except RerankError as err:  # outside a command: an eager option (--version) writing to a full disk
        error(err.cli_message())
        _discard_stdout()
        return err.exit_code
    except BrokenPipeError:
        _discard_stdout()
        return 141
    except typer.Abort:  # end of input at a prompt
        error("aborted")
        return 1
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143


def _usage_error(err: Any) -> int:
    """A parse error (missing option, bad value, unknown option or command) as one line, exit 2."""
    if type(err).__name__ == "NoArgsIsHelpError":  # `rerank` alone: the help itself is the message
        err.show()
        return int(err.exit_code)
    # "Value error, " is pydantic-style wording some typer versions put before an enum's choices.
    message = " ".join(err.format_message().split()).rstrip(".").replace("Value error, ", "")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]  # "Missing option" -> "missing option", as our lines read
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    error(message)
    return int(err.exit_code)


def _flush_stdout() -> None:
    """Flush results; a failure is an output error (74) or, for a reader that went away, a broken pipe."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OutputError):
        raise
    except OSError as exc:
        raise output_error(exc) from exc


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that what is still buffered cannot fail again at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # CliRunner's stdout has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


app = typer.Typer(
    cls=RerankGroup,
    name="rerank",
    help="Score and re-order documents against a query with an ONNX cross-encoder.",
    epilog=EXIT_CODE_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rerank {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Score and re-order documents against a query with an ONNX cross-encoder."""
    set_debug(ctx, debug)


app.command(cls=Command)(score)
app.command(cls=Command)(rerank)
app.command(cls=Command)(batch)
app.command("eval", cls=Command)(eval_runs)
app.add_typer(models_app, name="models")


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


class _Stdout(io.FileIO):
    """Descriptor 1, whose failed writes say they are output errors (74), whoever wrote: a writer, rich,
    typer.echo. A reader that went away stays a BrokenPipeError (141)."""

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise output_error(exc) from exc


def _standard_streams() -> None:
    """Make stdio safe to use whatever state the caller left it in: closed, full, unbuffered.

    A closed descriptor 0, 1 or 2 is held by /dev/null opened the wrong way round, so no file opened
    later takes its number and using it still fails (EBADF), as on the closed stream. stdout is
    rebuilt over `_Stdout` with a buffered binary layer: under PYTHONUNBUFFERED the stock one is a
    raw file whose short writes (a reader going away) would be dropped in silence.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            held = os.open(os.devnull, os.O_WRONLY if fd == 0 else os.O_RDONLY)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
    old: TextIO | None = sys.stdout
    binary = getattr(old, "buffer", None)
    if old is not None and not isinstance(getattr(binary, "raw", binary), io.FileIO):
        return  # not a plain descriptor (a Windows console, a stream replaced by the caller): leave it
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Stdout(1, "w", closefd=False)),
        encoding=getattr(old, "encoding", None) or "utf-8", errors=getattr(old, "errors", None) or "strict",
        line_buffering=bool(getattr(old, "line_buffering", False)), write_through=True)


def _leave(code: int) -> NoReturn:
    """Flush stdio and leave with os._exit, without finalizing the interpreter.

    The background reader (engine/batching.py) is a daemon thread that may be blocked inside stdin's
    read, holding that buffer's lock; finalizing the interpreter then aborts the process ("Fatal
    Python error: _enter_buffered_busy", exit 134) instead of giving 130, 143 or 74. Once the command
    has returned there is nothing left to finalize: results are flushed here, and `with` blocks have
    already closed files and removed temporary directories.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the code is decided
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, OutputError):  # already reported by the funnel, or stderr is gone
            pass
    os._exit(code)


def main() -> NoReturn:
    """Console-script entry point: SIGTERM stops like Ctrl-C (complete lines only), with exit 143."""
    signal.signal(signal.SIGTERM, _terminate)
    _standard_streams()
    try:
        app(prog_name="rerank")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            error(exc.code)
    except KeyboardInterrupt:  # a signal after the funnel had returned
        code = 130
    except Terminated:
        code = 143
    except Exception as exc:
        stopped = _stop_code(exc)
        if stopped is None:  # a bug: it keeps its traceback
            traceback.print_exc()
        code = 1 if stopped is None else stopped
    _leave(code)


def _stop_code(exc: BaseException) -> int | None:
    """130 or 143 when a stop signal lies behind `exc` (a library that turns a Ctrl-C during its own
    import into an ImportError: onnxruntime does), else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, KeyboardInterrupt):
            return 130
        if isinstance(cause, Terminated):
            return 143
        cause = cause.__cause__ or cause.__context__
    return None
