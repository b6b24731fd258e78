"""The `rerank` command line: options -> stage calls -> exit code. Parses and prints, nothing more.

Heavy libraries (numpy, onnxruntime, tokenizers, huggingface_hub) are imported inside command
bodies so that `rerank --help` and `--version` start fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .console import download_progress, err_console, error
from .errors import EXIT_CODES, RerankError
from .models import DEFAULT_MODEL
from .readers import InputFormat, check_sources, read_records
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
    add_completion=False,
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
Model = Annotated[str, typer.Option("--model", "-m", envvar="RERANK_MODEL",
                                    help="A model directory, registry name or hub repo id.")]
Field = Annotated[str, typer.Option("--field", help="JSON field holding the document text.")]
InFormat = Annotated[InputFormat, typer.Option("--input-format", help="Input format; auto: by extension, "
                                               "then by content.")]
OutFormat = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format; auto: a table on a "
                                                 "terminal, JSONL otherwise.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Pairs per model call.")]
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
    batch_size: BatchSize = 32, max_length: MaxLength = None, provider: Provider = None,
    threads: Threads = None, sigmoid: Sigmoid = False, onnx_file: OnnxFile = None, variant: Variant = None,
    revision: Revision = None, cache_dir: CacheDir = None, offline: Offline = False, refresh: Refresh = False,
    score_key: ScoreKey = "score", quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Score every document against the query; results in input order, written as they are computed.

    \b
    Examples:
      rerank score -q "what is the capital of france" docs.jsonl > scored.jsonl
      cat docs.txt | rerank score -q "capital of france" -m ./my-onnx-model -f tsv
    """
    from .pairs import score_stream

    _set_debug(ctx, debug)
    paths = check_sources(files or [])
    engine = _engine(model, quiet=quiet, onnx_file=onnx_file, variant=variant, revision=revision,
                     cache_dir=cache_dir, offline=offline, refresh=refresh, provider=provider, threads=threads,
                     batch_size=batch_size, max_length=max_length, sigmoid=sigmoid)
    writer = open_writer(output_format, sys.stdout, ranked=False, score_key=score_key, field=field)
    for window in score_stream(engine, query, read_records(paths, input_format), field):
        writer.write(window)
    writer.close()


@app.command()
def rerank(
    ctx: typer.Context, query: Query, files: Files = None, top_k: TopK = None, model: Model = DEFAULT_MODEL,
    field: Field = "text", input_format: InFormat = InputFormat.auto,
    output_format: OutFormat = OutputFormat.auto, batch_size: BatchSize = 32, max_length: MaxLength = None,
    provider: Provider = None, threads: Threads = None, sigmoid: Sigmoid = False, onnx_file: OnnxFile = None,
    variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None, offline: Offline = False,
    refresh: Refresh = False, score_key: ScoreKey = "score", quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Re-order documents best first (ties keep input order), each with its rank and score.

    \b
    Examples:
      rerank rerank -q "what is the capital of france" docs.jsonl --top-k 5
      search-engine "capital of france" | rerank rerank -q "capital of france" -k 10 | jq -r .id
    """
    from .pairs import rank

    _set_debug(ctx, debug)
    paths = check_sources(files or [])
    engine = _engine(model, quiet=quiet, onnx_file=onnx_file, variant=variant, revision=revision,
                     cache_dir=cache_dir, offline=offline, refresh=refresh, provider=provider, threads=threads,
                     batch_size=batch_size, max_length=max_length, sigmoid=sigmoid)
    ranked = rank(engine, query, read_records(paths, input_format), field, top_k)
    writer = open_writer(output_format, sys.stdout, ranked=True, score_key=score_key, field=field)
    writer.write(ranked)
    writer.close()


from .cli_models import models_app  # noqa: E402 - the group needs the option types above

app.add_typer(models_app, name="models")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="rerank")
