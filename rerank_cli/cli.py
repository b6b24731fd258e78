"""The `rerank` command line: options -> stage calls -> exit code. Parses and prints, nothing more.

Heavy libraries (numpy, onnxruntime, tokenizers, huggingface_hub) are imported inside command
bodies so that `rerank --help` and `--version` start fast.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .console import SkipReport, download_progress, err_console, error, score_progress, warn
from .errors import EXIT_CODES, RerankError, Terminated
from .models import DEFAULT_MODEL
from .readers import InputFormat, check_sources, read_records, total_bytes
from .writers import OutputFormat, open_writer

if TYPE_CHECKING:
    from .engine import Reranker

EXIT_CODE_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES)


class RerankGroup(TyperGroup):
    """Turns every RerankError into one stderr line and its exit code, in CliRunner and the binary alike."""

    def invoke(self, ctx: Any) -> Any:  # typer's bundled click.Context has no public name
        try:
            return super().invoke(ctx)
        except RerankError as err:
            if ctx.meta.get("rerank.debug") or os.environ.get("RERANK_DEBUG"):
                err_console().print_exception()
            error(str(err))
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


def _set_debug(ctx: typer.Context, debug: bool) -> None:
    if debug:
        ctx.meta["rerank.debug"] = True  # meta is shared by the whole context tree


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Score and re-order documents against a query with an ONNX cross-encoder."""
    _set_debug(ctx, debug)


Files = Annotated[Optional[list[str]], typer.Argument(
    metavar="FILE", help="Input files (JSONL, text or a JSON array); - is stdin, the default.", show_default=False)]
Query = Annotated[str, typer.Option("--query", "-q", help="The query to score documents against.",
                                    show_default=False)]
def complete_model(incomplete: str) -> list[str]:
    """Shell completion for -m: registry names (a directory path completes as the shell does)."""
    from .models import REGISTRY

    return [s.name for s in REGISTRY if s.name.lower().startswith(incomplete.lower())]


Model = Annotated[str, typer.Option("--model", "-m", envvar="RERANK_MODEL", autocompletion=complete_model,
                                    help="A model directory, registry name or hub repo id.")]
Field = Annotated[str, typer.Option("--field", help="JSON field holding the document text.")]
InFormat = Annotated[InputFormat, typer.Option("--input-format", help="Input format; auto: by extension, "
                                               "then by content.")]
OutFormat = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format; auto: a table on a "
                                                 "terminal, JSONL otherwise.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Most pairs per model call.")]
BatchTokens = Annotated[int, typer.Option("--batch-tokens", min=1, help="Most padded tokens per model call "
                                          "(small batches are faster on CPU).")]
MaxLength = Annotated[Optional[int], typer.Option("--max-length", min=4, show_default=False,
                                                  help="Token limit per pair [default: the model's].")]
Provider = Annotated[Optional[str], typer.Option("--provider", show_default=False,
                                                 help="Execution provider: cpu, cuda, openvino, ... [default: cpu].")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, show_default=False,
                                                help="Intra-op threads [default: onnxruntime's choice].")]
Sigmoid = Annotated[bool, typer.Option("--sigmoid", help="Output probabilities (sigmoid of the logits).")]
OnnxFile = Annotated[Optional[str], typer.Option("--onnx-file", show_default=False,
                                                 help="ONNX file inside the model [default: onnx/model.onnx, "
                                                      "else model.onnx].")]
ScoreKey = Annotated[str, typer.Option("--score-key", help="Output key for the score (an input value under "
                                       "the same key is kept as input_<key>).")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
Variant = Annotated[Optional[str], typer.Option("--variant", show_default=False,
                                               help="A published variant of the model: quantized, int8, fp16, ...")]
Revision = Annotated[Optional[str], typer.Option("--revision", show_default=False,
                                                help="Hub branch, tag or commit to use [default: main].")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", envvar="RERANK_CACHE_DIR", show_default=False,
                                                help="Model cache [default: huggingface_hub's, from HF_HOME].")]
Offline = Annotated[bool, typer.Option("--offline", help="Never touch the network (also HF_HUB_OFFLINE=1).")]
Refresh = Annotated[bool, typer.Option("--refresh", help="Check the hub for a newer revision of a cached model.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or warnings on stderr.")]
SkipInvalid = Annotated[bool, typer.Option("--skip-invalid", help="Report bad input records on stderr and go on "
                                           "(exit 0) instead of stopping with exit 65.")]
TopK = Annotated[Optional[int], typer.Option("--top-k", "-k", min=1, show_default=False,
                                             help="Keep only the K best documents [default: all].")]


def _engine(model: str, *, quiet: bool, **options: Any) -> Reranker:
    """Load the engine, showing download bars on stderr if the model has to be pulled first."""
    from .engine import Reranker

    with download_progress(quiet) as progress:
        return Reranker(model, progress=progress, **options)


@app.command()
def score(
    ctx: typer.Context, query: Query, files: Files = None, model: Model = DEFAULT_MODEL, field: Field = "text",
    input_format: InFormat = InputFormat.auto, output_format: OutFormat = OutputFormat.auto,
    batch_size: BatchSize = 64, batch_tokens: BatchTokens = 768, max_length: MaxLength = None,
    provider: Provider = None, threads: Threads = None, sigmoid: Sigmoid = False, onnx_file: OnnxFile = None,
    variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None, offline: Offline = False,
    refresh: Refresh = False, score_key: ScoreKey = "score", skip_invalid: SkipInvalid = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Score every document against the query; results in input order, written as they are computed.

    \b
    Examples:
      rerank score -q "what is the capital of france" docs.jsonl > scored.jsonl
      cat docs.txt | rerank score -q "capital of france" -m ./my-onnx-model -f tsv
    """
    _set_debug(ctx, debug)
    _run(query, files, None, ranked=False, field=field, input_format=input_format, output_format=output_format,
         score_key=score_key, skip_invalid=skip_invalid, quiet=quiet, model=model, onnx_file=onnx_file,
         variant=variant, revision=revision, cache_dir=cache_dir, offline=offline, refresh=refresh,
         provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
         max_length=max_length, sigmoid=sigmoid)


@app.command()
def rerank(
    ctx: typer.Context, query: Query, files: Files = None, top_k: TopK = None, model: Model = DEFAULT_MODEL,
    field: Field = "text", input_format: InFormat = InputFormat.auto,
    output_format: OutFormat = OutputFormat.auto, batch_size: BatchSize = 64, batch_tokens: BatchTokens = 768,
    max_length: MaxLength = None, provider: Provider = None, threads: Threads = None, sigmoid: Sigmoid = False,
    onnx_file: OnnxFile = None, variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None,
    offline: Offline = False, refresh: Refresh = False, score_key: ScoreKey = "score",
    skip_invalid: SkipInvalid = False, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Re-order documents best first (ties keep input order), each with its rank and score.

    With --top-k only K candidates are kept in memory; without it every document is.

    \b
    Examples:
      rerank rerank -q "what is the capital of france" docs.jsonl --top-k 5
      search-engine "capital of france" | rerank rerank -q "capital of france" -k 10 | jq -r .id
    """
    _set_debug(ctx, debug)
    _run(query, files, top_k, ranked=True, field=field, input_format=input_format, output_format=output_format,
         score_key=score_key, skip_invalid=skip_invalid, quiet=quiet, model=model, onnx_file=onnx_file,
         variant=variant, revision=revision, cache_dir=cache_dir, offline=offline, refresh=refresh,
         provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
         max_length=max_length, sigmoid=sigmoid)


def _run(query: str, files: list[str] | None, top_k: int | None, *, ranked: bool, field: str,
         input_format: InputFormat, output_format: OutputFormat, score_key: str, skip_invalid: bool, quiet: bool,
         **engine_options: Any) -> None:
    """The data flow of both commands: inputs -> checked records -> engine -> writer, with progress."""
    from .pairs import Counted, checked, rank, score_stream

    paths = check_sources(files or [])
    engine = _engine(quiet=quiet, **engine_options)
    skipped = SkipReport(quiet) if skip_invalid else None
    records = Counted(checked(read_records(paths, input_format, on_invalid=skipped), field, skipped))
    writer = open_writer(output_format, sys.stdout, ranked=ranked, score_key=score_key, field=field)
    with score_progress(total_bytes(paths), quiet) as advance:
        if ranked:
            writer.write(rank(engine, query, records, field, top_k, on_window=advance))
        else:
            for window in score_stream(engine, query, records, field):
                writer.write(window)
                advance(window)
    writer.close()
    if not ranked and writer.count != records.count:
        raise RerankError(f"internal error: read {records.count} documents but wrote {writer.count}; please report")
    if engine.truncated and not quiet:
        warn(f"{engine.truncated} of {records.count} pairs were longer than {engine.max_length} tokens and were "
             "truncated longest-first (--max-length sets the limit; --quiet hides this)")
    if skipped is not None:
        skipped.summary()


from .cli_models import models_app  # noqa: E402 - the group needs the option types above

app.add_typer(models_app, name="models")


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> None:
    """Console-script entry point: SIGTERM stops like Ctrl-C (complete lines only), with exit 143."""
    signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="rerank")
