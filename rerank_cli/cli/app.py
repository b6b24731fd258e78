"""The `rerank` command line: options -> stage calls -> exit code. Parses and prints, nothing more.

Heavy libraries (numpy, onnxruntime, tokenizers, huggingface_hub) are imported inside command
bodies so that `rerank --help` and `--version` start fast.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import EXIT_CODES, RerankError, Terminated
from .console import err_console, error
from .models import models_app
from .scoring import rerank, score, set_debug

EXIT_CODE_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES)


class RerankGroup(TyperGroup):
    """Turns every RerankError into one stderr line and its exit code, in CliRunner and the binary alike."""

    def invoke(self, ctx: Any) -> Any:  # typer's bundled click.Context has no public name
        try:
            return super().invoke(ctx)
        except RerankError as err:
            if ctx.meta.get("rerank.debug") or os.environ.get("RERANK_DEBUG"):
                err_console().print_exception()
            error(err.cli_message())
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Terminated:
            raise typer.Exit(143) from None
        except BrokenPipeError:
            # The reader went away (`rerank ... | head -1`): stop quietly, as cat and grep do, with
            # 141 (128 + SIGPIPE). Point stdout at /dev/null so the exit-time flush cannot fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None


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


app.command()(score)
app.command()(rerank)
app.add_typer(models_app, name="models")


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> None:
    """Console-script entry point: SIGTERM stops like Ctrl-C (complete lines only), with exit 143."""
    signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="rerank")
