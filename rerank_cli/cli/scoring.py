"""`rerank score` and `rerank rerank`: options -> records -> engine -> writer."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from ..engine.activation import Activation
from ..engine.chunking import LongDocs
from ..engine.openvino import Precision
from ..errors import InputError, RerankError, UsageError
from ..records.readers import InputFormat, check_sources, read_records, total_bytes
from ..records.requests import read_queries
from ..records.writers import OutputFormat, check_id_field, check_score_key, open_writer, output_keys
from ..store.registry import DEFAULT_MODEL
from .console import SkipReport, download_progress, say, score_progress, stdin_notice, warn
from .options import (
    ActivationOpt,
    BatchSize,
    BatchTokens,
    CacheDir,
    ChunkOverlap,
    Debug,
    EngineOptions,
    Field,
    Files,
    IdField,
    InFormat,
    LongDocsOpt,
    MaxChunks,
    MaxLength,
    Model,
    Offline,
    OnnxFile,
    OutFormat,
    PrecisionOpt,
    Provider,
    QueriesFile,
    Query,
    QueryOrFile,
    Quiet,
    Refresh,
    ReturnQuery,
    Revision,
    ScoreKey,
    Sigmoid,
    SkipInvalid,
    Threads,
    TopK,
    Variant,
)

if TYPE_CHECKING:
    from ..engine.engine import Reranker


def set_debug(ctx: typer.Context, debug: bool) -> None:
    """Record --debug given after the command name (the app's error funnel reads it)."""
    if debug:
        ctx.meta["rerank.debug"] = True  # meta is shared by the whole context tree


def load_engine(options: EngineOptions, quiet: bool) -> Reranker:
    """Load the engine, showing download bars on stderr if the model has to be pulled first."""
    from ..engine.engine import Reranker

    with download_progress(quiet) as progress:
        engine = Reranker(progress=progress, **options.kwargs())
    if engine.files.warning and not quiet:
        warn(engine.files.warning)  # e.g. --refresh could not reach the Hub: the cached copy is used
    if engine.files.note and not quiet:
        say(engine.files.note)  # e.g. which int8 file --variant int8 chose for this CPU
    return engine


def score(
    ctx: typer.Context, query: Query, files: Files = None, model: Model = DEFAULT_MODEL, field: Field = "text",
    input_format: InFormat = InputFormat.auto, output_format: OutFormat = OutputFormat.auto,
    batch_size: BatchSize = 64, batch_tokens: BatchTokens = 768, max_length: MaxLength = None,
    provider: Provider = None, threads: Threads = None, activation: ActivationOpt = Activation.auto,
    sigmoid: Sigmoid = False, onnx_file: OnnxFile = None,
    variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None, offline: Offline = False,
    refresh: Refresh = False, score_key: ScoreKey = "score", id_field: IdField = None,
    skip_invalid: SkipInvalid = False, quiet: Quiet = False, debug: Debug = False,
    long_docs: LongDocsOpt = LongDocs.truncate, chunk_overlap: ChunkOverlap = None, max_chunks: MaxChunks = None,
    precision: PrecisionOpt = Precision.fp32,
) -> None:
    """Score every document against the query; results in input order, written as they are computed.

    \b
    Examples:
      rerank score -q "what is the capital of france" docs.jsonl > scored.jsonl
      cat docs.txt | rerank score -q "capital of france" -m ./my-onnx-model -f tsv
      rerank score -q "warranty period" manuals.jsonl --long-docs chunk --max-chunks 8
    """
    set_debug(ctx, debug)
    _run(query, files, None, ranked=False, field=field, input_format=input_format, output_format=output_format,
         score_key=score_key, skip_invalid=skip_invalid, quiet=quiet, model=model, onnx_file=onnx_file,
         variant=variant, revision=revision, cache_dir=cache_dir, offline=offline, refresh=refresh,
         provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
         max_length=max_length, activation=_activation(activation, sigmoid, quiet),
         id_field=id_field, long_docs=long_docs, chunk_overlap=chunk_overlap, max_chunks=max_chunks,
         precision=precision)


def rerank(
    ctx: typer.Context, query: QueryOrFile = None, files: Files = None, top_k: TopK = None,
    queries: QueriesFile = None, return_query: ReturnQuery = False, model: Model = DEFAULT_MODEL,
    field: Field = "text", input_format: InFormat = InputFormat.auto,
    output_format: OutFormat = OutputFormat.auto, batch_size: BatchSize = 64, batch_tokens: BatchTokens = 768,
    max_length: MaxLength = None, provider: Provider = None, threads: Threads = None,
    activation: ActivationOpt = Activation.auto, sigmoid: Sigmoid = False,
    onnx_file: OnnxFile = None, variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None,
    offline: Offline = False, refresh: Refresh = False, score_key: ScoreKey = "score", id_field: IdField = None,
    skip_invalid: SkipInvalid = False, quiet: Quiet = False, debug: Debug = False,
    long_docs: LongDocsOpt = LongDocs.truncate, chunk_overlap: ChunkOverlap = None, max_chunks: MaxChunks = None,
    precision: PrecisionOpt = Precision.fp32,
) -> None:
    """Re-order documents best first (ties keep input order), each with its rank and score.

    With --top-k only K candidates are kept in memory; without it every document is. With --queries
    every query of FILE ranks every document (read once and held in memory), in one run: each record
    gains `query_id` (and `query` with --return-query), ranks are per query.

    \b
    Examples:
      rerank rerank -q "what is the capital of france" docs.jsonl --top-k 5
      search-engine "capital of france" | rerank rerank -q "capital of france" -k 10 | jq -r .id
      rerank rerank --queries queries.txt docs.jsonl -k 3 --return-query
      rerank rerank -q "warranty period" manuals.jsonl --long-docs chunk -k 3 | jq -c .chunk
    """
    set_debug(ctx, debug)
    query = _one_query(query, queries, return_query)
    _run(query, files, top_k, ranked=True, queries=queries, return_query=return_query,
         field=field, input_format=input_format, output_format=output_format,
         score_key=score_key, skip_invalid=skip_invalid, quiet=quiet, model=model, onnx_file=onnx_file,
         variant=variant, revision=revision, cache_dir=cache_dir, offline=offline, refresh=refresh,
         provider=provider, threads=threads, batch_size=batch_size, batch_tokens=batch_tokens,
         max_length=max_length, activation=_activation(activation, sigmoid, quiet),
         id_field=id_field, long_docs=long_docs, chunk_overlap=chunk_overlap, max_chunks=max_chunks,
         precision=precision)


def _one_query(query: str | None, queries: str | None, return_query: bool) -> str:
    """-q or --queries, exactly one of them (usage errors otherwise)."""
    if query is not None and queries is not None:
        raise UsageError("-q/--query and --queries cannot be used together: give one query, or a file of them")
    if query is None and queries is None:
        raise UsageError("missing option '-q' / '--query' (or --queries FILE for several queries)")
    if return_query and queries is None:
        raise UsageError("--return-query needs --queries (with -q the query is the one you gave)")
    return query or ""


def _activation(activation: Activation, sigmoid: bool, quiet: bool) -> Activation:
    """--activation, or the deprecated --sigmoid (kept working with a warning)."""
    if not sigmoid:
        return activation
    if activation not in (Activation.auto, Activation.sigmoid):
        raise UsageError(f"--sigmoid conflicts with --activation {activation.value}; use --activation alone")
    if not quiet:
        warn("--sigmoid is deprecated and will be removed; use --activation sigmoid")
    return Activation.sigmoid


def _run(query: str, files: list[str] | None, top_k: int | None, *, ranked: bool, field: str,
         input_format: InputFormat, output_format: OutputFormat, score_key: str, id_field: str | None,
         skip_invalid: bool, quiet: bool, queries: str | None = None, return_query: bool = False,
         **engine_options: Any) -> None:
    """The data flow of both commands: inputs -> checked records -> engine -> writer, with progress."""
    from ..pipeline import Counted, checked, rank, rank_queries, score_stream

    paths = check_sources(files or [])
    if queries is not None:
        check_sources([queries])
    chunks = engine_options["long_docs"] is LongDocs.chunk
    if not chunks and (engine_options["chunk_overlap"] is not None or engine_options["max_chunks"] is not None):
        raise UsageError("--chunk-overlap and --max-chunks apply only with --long-docs chunk")
    check_score_key(score_key, field, chunks)
    check_id_field(id_field, score_key)
    engine = load_engine(EngineOptions(**engine_options), quiet)
    stdin_notice(paths, quiet)
    skipped = SkipReport() if skip_invalid else None
    keys = output_keys(score_key, ranked, chunks) + (("query_id", "query") if queries is not None else ())
    records = Counted(checked(read_records(paths, input_format, on_invalid=skipped), field, skipped, keys=keys))
    writer = open_writer(output_format, sys.stdout, ranked=ranked, score_key=score_key, field=field,
                         id_field=id_field)
    writer.chunks = chunks
    try:
        with score_progress(total_bytes(paths), quiet) as advance:
            if queries is not None:
                held = list(records)  # every query ranks every document: they are read once and held
                for rows in rank_queries(engine, read_queries(queries, skipped), held, field, top_k, return_query):
                    writer.write(rows)
            elif ranked:
                writer.write(rank(engine, query, records, field, top_k, on_window=advance))
            else:
                for window in score_stream(engine, query, records, field):
                    writer.write(window)
                    advance(window)
    except InputError:
        writer.close()  # what came before the bad record stays usable: a closed JSON array, the table so far
        raise
    writer.close()
    if not ranked and writer.count != records.count:
        raise RerankError(f"internal error: read {records.count} documents but wrote {writer.count}; please report")
    message = long_text_warning(engine, records.count)
    if message and not quiet:
        warn(message)
    if skipped is not None:
        skipped.summary()


def long_text_warning(engine: Reranker, documents: int) -> str | None:
    """The closing warning when text went unscored: truncated pairs, or with --long-docs chunk truncated
    documents and how many were scored by windows."""
    most = None if engine.chunker is None else engine.chunker.max_chunks
    return long_text_message(engine.truncated, engine.chunked, documents, engine.max_length, most)


def long_text_message(truncated: int, chunked: int, documents: int, max_length: int,
                      max_chunks: int | None) -> str | None:
    """`long_text_warning` from counts (`max_chunks` is None without --long-docs chunk), as Ray actors report them."""
    if not truncated:
        return None
    if max_chunks is not None:
        return (f"{truncated} of {documents} documents were truncated (text past --max-chunks {max_chunks} "
                f"window{'s' if max_chunks != 1 else ''}, or a query longer than half the {max_length}-token "
                f"limit); {chunked} of {documents} were scored by their best window (--quiet hides this)")
    return (f"{truncated} of {documents} pairs were longer than {max_length} tokens and were "
            "truncated longest-first (--max-length sets the limit; --long-docs chunk scores the whole text; "
            "--quiet hides this)")
