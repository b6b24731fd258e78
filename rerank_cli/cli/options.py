"""Every option shared by `score` and `rerank` (and later `batch`), declared once as an Annotated type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from ..engine.activation import Activation
from ..engine.chunking import LongDocs
from ..engine.openvino import Precision
from ..records.readers import InputFormat
from ..records.writers import OutputFormat
from ..store.registry import DEFAULT_MODEL


class Command(TyperCommand):
    """A command whose --help names each argument as its usage line does (`[FILE]...`), not `FILE <list[str]>`.

    Typer appends the Python type to every argument in help; options get a metavar instead.
    """

    def format_options(self, ctx: Any, formatter: Any) -> None:  # typer's bundled click types have no public name
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                name = (name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")
                args.append((name, record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


Files = Annotated[Optional[list[str]], typer.Argument(
    metavar="FILE", help="Input files (JSONL, text or a JSON array); - is stdin, the default.", show_default=False)]
Query = Annotated[str, typer.Option("--query", "-q", metavar="TEXT", help="The query to score documents against.",
                                    show_default=False)]
def complete_model(incomplete: str) -> list[str]:
    """Shell completion for -m: registry names (a directory path completes as the shell does)."""
    from ..store.registry import REGISTRY

    return [s.name for s in REGISTRY if s.name.lower().startswith(incomplete.lower())]


Model = Annotated[str, typer.Option("--model", "-m", metavar="MODEL", envvar="RERANK_MODEL",
                                    autocompletion=complete_model,
                                    help="A model directory, registry name or hub repo id.")]
Field = Annotated[str, typer.Option("--field", metavar="NAME", help="JSON field holding the document text.")]
InFormat = Annotated[InputFormat, typer.Option("--input-format", help="Input format; auto: by extension, "
                                               "then by content.")]
OutFormat = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format; auto: a table on a "
                                                 "terminal, JSONL otherwise.")]
BatchSize = Annotated[int, typer.Option("--batch-size", metavar="N", min=1, help="Most pairs per model call.")]
BatchTokens = Annotated[int, typer.Option("--batch-tokens", metavar="N", min=1,
                                          help="Most padded tokens per model call (small batches are faster on CPU).")]
MaxLength = Annotated[Optional[int], typer.Option("--max-length", metavar="N", min=4, show_default=False,
                                                  help="Token limit per pair [default: the model's].")]
Provider = Annotated[Optional[str], typer.Option("--provider", metavar="NAME", show_default=False,
                                                 help="Execution provider: cpu, cuda, openvino, ... [default: cpu].")]
PrecisionOpt = Annotated[Precision, typer.Option(
    "--precision", help="Arithmetic: fp32 (exact), or bf16 with --provider openvino on a CPU with BF16 "
                        "instructions (faster; scores move by about 1e-2).")]
Threads = Annotated[Optional[int], typer.Option("--threads", metavar="N", min=1, show_default=False,
                                                help="Intra-op threads, at most 8 per CPU core "
                                                     "[default: onnxruntime's choice].")]
ActivationOpt = Annotated[Activation, typer.Option(
    "--activation", help="Output function: auto (the model's own, as sentence-transformers applies it), none "
                         "(raw logits), sigmoid (probabilities).")]
Sigmoid = Annotated[bool, typer.Option("--sigmoid", hidden=True, help="Deprecated: --activation sigmoid.")]
OnnxFile = Annotated[Optional[str], typer.Option("--onnx-file", metavar="PATH", show_default=False,
                                                 help="ONNX file inside the model [default: onnx/model.onnx, "
                                                      "else model.onnx].")]
ScoreKey = Annotated[str, typer.Option("--score-key", metavar="NAME",
                                       help="Output key for the score (an input value under the same key is kept "
                                            "as input_<key>); not index, rank, text or --field.")]
IdField = Annotated[Optional[str], typer.Option("--id-field", metavar="NAME", show_default=False,
                                                help="Field shown as the id column of the table and TSV "
                                                     "[default: id, when the records have one].")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
Variant = Annotated[Optional[str], typer.Option("--variant", metavar="NAME", show_default=False,
                                               help="A published variant of the model: quantized, int8, fp16, ...")]
Revision = Annotated[Optional[str], typer.Option("--revision", metavar="REV", show_default=False,
                                                help="Hub branch, tag or commit to use [default: main].")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", metavar="DIR", envvar="RERANK_CACHE_DIR",
                                                show_default=False,
                                                help="Model cache [default: huggingface_hub's, from HF_HOME].")]
Offline = Annotated[bool, typer.Option("--offline", help="Never touch the network (also HF_HUB_OFFLINE=1).")]
Refresh = Annotated[bool, typer.Option("--refresh", help="Check the hub for a newer revision of a cached model.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or warnings on stderr.")]
SkipInvalid = Annotated[bool, typer.Option("--skip-invalid", help="Report bad input records on stderr and go on "
                                           "(exit 0) instead of stopping with exit 65.")]
TopK = Annotated[Optional[int], typer.Option("--top-k", "-k", metavar="K", min=1, show_default=False,
                                             help="Keep only the K best documents [default: all].")]


QueryOrFile = Annotated[Optional[str], typer.Option(
    "--query", "-q", metavar="TEXT", show_default=False,
    help="The query to score documents against (or --queries).")]
QueriesFile = Annotated[Optional[str], typer.Option(
    "--queries", metavar="FILE", show_default=False,
    help="Rank the documents for every query of FILE (one per line, or JSONL with id and text); the "
         "documents are read once and held in memory.")]
ReturnQuery = Annotated[bool, typer.Option("--return-query", help="With --queries: add each record's query text.")]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Everything that decides how the model is loaded and scores: the same for score, rerank and batch,
    so that a pair gets the same score from each."""

    model: str = DEFAULT_MODEL
    onnx_file: str | None = None
    variant: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    refresh: bool = False
    provider: str | None = None
    threads: int | None = None
    batch_size: int = 64
    batch_tokens: int = 768
    max_length: int | None = None
    activation: Activation = Activation.auto
    long_docs: LongDocs = LongDocs.truncate
    chunk_overlap: int | None = None
    max_chunks: int | None = None
    precision: Precision = Precision.fp32

    def kwargs(self) -> dict[str, Any]:
        """The options as `Reranker(...)` keywords."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


LongDocsOpt = Annotated[LongDocs, typer.Option(
    "--long-docs", help="A pair longer than the model's limit: truncate it, or chunk the document into windows "
                        "and score it by the best one.")]
ChunkOverlap = Annotated[Optional[int], typer.Option("--chunk-overlap", metavar="N", min=0, show_default=False,
                                                     help="With --long-docs chunk: tokens shared by consecutive "
                                                          "windows (at most half a window) [default: 80].")]
MaxChunks = Annotated[Optional[int], typer.Option("--max-chunks", metavar="N", min=1, show_default=False,
                                                  help="With --long-docs chunk: most windows per document; the "
                                                       "rest is truncated [default: 16].")]
