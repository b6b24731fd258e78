"""Every option shared by `score` and `rerank` (and later `batch`), declared once as an Annotated type."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..records.readers import InputFormat
from ..records.writers import OutputFormat

Files = Annotated[Optional[list[str]], typer.Argument(
    metavar="FILE", help="Input files (JSONL, text or a JSON array); - is stdin, the default.", show_default=False)]
Query = Annotated[str, typer.Option("--query", "-q", help="The query to score documents against.",
                                    show_default=False)]
def complete_model(incomplete: str) -> list[str]:
    """Shell completion for -m: registry names (a directory path completes as the shell does)."""
    from ..store.registry import REGISTRY

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
                                       "the same key is kept as input_<key>); not index, rank, text or --field.")]
IdField = Annotated[Optional[str], typer.Option("--id-field", show_default=False,
                                                help="Field shown as the id column of the table and TSV "
                                                     "[default: id, when the records have one].")]
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


