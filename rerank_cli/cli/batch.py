"""`rerank batch`: many queries in one run, as rerank request lines or as a TREC run to re-rank."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..engine.activation import Activation
from ..engine.chunking import LongDocs
from ..engine.openvino import Precision
from ..errors import InputError, UsageError
from ..records.readers import check_sources
from ..records.writers import BatchFormat, open_answer_writer
from ..store.registry import DEFAULT_MODEL
from .console import SkipReport, stdin_notice, warn
from .options import (
    ActivationOpt,
    BatchSize,
    BatchTokens,
    CacheDir,
    ChunkOverlap,
    Debug,
    EngineOptions,
    Field,
    LongDocsOpt,
    MaxChunks,
    MaxLength,
    Model,
    Offline,
    OnnxFile,
    PrecisionOpt,
    Provider,
    Quiet,
    Refresh,
    Revision,
    SkipInvalid,
    Threads,
    Variant,
)
from .scoring import load_engine, long_text_message, long_text_warning, set_debug

if TYPE_CHECKING:
    from ..records.requests import Answer, Request

Requests = Annotated[Optional[list[str]], typer.Argument(
    metavar="FILE", show_default=False, help="Request lines (JSONL); - is stdin, the default. Not with --run.")]
RunFile = Annotated[Optional[str], typer.Option("--run", metavar="RUN", show_default=False,
                                                help="A TREC run to re-rank (qid Q0 docid rank score tag).")]
TrecQueries = Annotated[Optional[str], typer.Option(
    "--queries", metavar="FILE", show_default=False, help="With --run: queries, TSV qid<TAB>text or BEIR JSONL.")]
Corpus = Annotated[Optional[str], typer.Option(
    "--corpus", metavar="FILE", show_default=False,
    help="With --run: documents, BEIR JSONL (_id, title, text) or TSV docid<TAB>text; only those the run "
         "names are kept in memory.")]
Depth = Annotated[int, typer.Option("--depth", metavar="K", min=1, help="With --run: re-rank each query's K best.")]
TopN = Annotated[Optional[int], typer.Option("--top-n", metavar="N", min=1, show_default=False,
                                             help="Results per request, unless the request has its own "
                                                  "top_n [default: all].")]
ReturnDocuments = Annotated[bool, typer.Option("--return-documents",
                                               help="Add each result's document as it came in (a request's "
                                                    "own return_documents wins).")]
Format = Annotated[BatchFormat, typer.Option("--format", "-f", help="Output format; auto: a TREC run with --run, "
                                             "else a table on a terminal and JSONL otherwise.")]
Tag = Annotated[str, typer.Option("--tag", metavar="NAME", help="The run name in the last column of TREC output.")]
RayOpt = Annotated[bool, typer.Option("--ray", help="Run as a Ray Data pipeline, on a local Ray cluster started for "
                                        "the run or on --ray-address's (pip install 'rerank-cli[ray]').")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", metavar="ADDRESS", envvar="RAY_ADDRESS", show_default=False,
    help="With --ray: the cluster, auto, HOST:PORT or ray://HOST:10001 [default: a local cluster].")]
RayActors = Annotated[Optional[int], typer.Option(
    "--ray-actors", metavar="N", min=1, show_default=False,
    help="With --ray: model actors, each with --threads threads (default 1) [default: the cluster's CPUs / threads].")]
Output = Annotated[Optional[str], typer.Option(
    "--output", metavar="DIR", show_default=False,
    help="With --ray: write the answers as JSONL (or TREC) parts into DIR (local, s3://, gs://), by the "
         "workers, instead of to stdout.")]


@dataclass(frozen=True, slots=True)
class RayRun:
    """Where and how `--ray` runs: the cluster, the actor count and the output directory, if any."""

    address: str | None
    actors: int | None
    output: str | None


def batch(
    ctx: typer.Context, files: Requests = None, run: RunFile = None, queries: TrecQueries = None,
    corpus: Corpus = None, depth: Depth = 100, top_n: TopN = None, return_documents: ReturnDocuments = False,
    field: Field = "text", output_format: Format = BatchFormat.auto, tag: Tag = "rerank",
    model: Model = DEFAULT_MODEL, batch_size: BatchSize = 64, batch_tokens: BatchTokens = 768,
    max_length: MaxLength = None, provider: Provider = None, threads: Threads = None,
    activation: ActivationOpt = Activation.auto, long_docs: LongDocsOpt = LongDocs.truncate,
    chunk_overlap: ChunkOverlap = None, max_chunks: MaxChunks = None, onnx_file: OnnxFile = None,
    variant: Variant = None, revision: Revision = None, cache_dir: CacheDir = None, offline: Offline = False,
    refresh: Refresh = False, skip_invalid: SkipInvalid = False, ray: RayOpt = False, ray_address: RayAddress = None,
    ray_actors: RayActors = None, output: Output = None, quiet: Quiet = False, debug: Debug = False,
    precision: PrecisionOpt = Precision.fp32,
) -> None:
    """Answer many rerank requests in one run: one result line per request line, in order.

    A request is a JSON line shaped like the Cohere, Jina and infinity rerank APIs: {"query": ...,
    "documents": [...], "top_n": N}; documents are strings or objects with the text under --field, and
    other keys pass through. The answer is those keys, then "results": [{"index", "relevance_score"}]
    best first. Pairs of all requests share one batcher; scores equal `rerank score`'s.

    With --run, re-rank the top --depth documents per query of a TREC run instead; the output is then
    a TREC run by default.

    With --ray, the same answers come from a Ray Data pipeline: FILEs may then be directories, s3:// or gs://
    paths, and --output DIR writes them as parts.

    \b
    Examples:
      rerank batch requests.jsonl > answers.jsonl
      rerank batch --run bm25.trec --queries queries.tsv --corpus corpus.jsonl --depth 100 > reranked.trec
      rerank batch --ray --ray-address auto s3://bucket/requests/ --output s3://bucket/answers/
    """
    set_debug(ctx, debug)
    if not tag or any(c.isspace() for c in tag):
        raise UsageError(f"--tag {tag!r}: a TREC run name must be one word (no spaces or tabs), not empty")
    options = EngineOptions(model=model, onnx_file=onnx_file, variant=variant, revision=revision, cache_dir=cache_dir,
                            offline=offline, refresh=refresh, provider=provider, threads=threads,
                            batch_size=batch_size, batch_tokens=batch_tokens, max_length=max_length,
                            activation=activation, long_docs=long_docs, chunk_overlap=chunk_overlap,
                            max_chunks=max_chunks, precision=precision)
    if long_docs is not LongDocs.chunk and (chunk_overlap is not None or max_chunks is not None):
        raise UsageError("--chunk-overlap and --max-chunks apply only with --long-docs chunk")
    # RAY_ADDRESS in the environment without --ray is left alone; --ray-address without it is a mistake.
    from_option = getattr(ctx.get_parameter_source("ray_address"), "name", "") != "ENVIRONMENT"
    if not ray and (ray_actors is not None or output is not None or (ray_address is not None and from_option)):
        raise UsageError("--ray-address, --ray-actors and --output go with --ray")
    if ray_address is not None and not ray_address.strip():
        if from_option:
            raise UsageError("--ray-address: empty; give auto, HOST:PORT or ray://HOST:10001")
        ray_address = None  # an empty RAY_ADDRESS: a local cluster
    if ray and output is not None and not output.strip():
        raise UsageError("--output: empty; give a directory (local, s3://, gs://)")
    skipped = SkipReport() if skip_invalid else None
    requests = None if run is None else _run_requests(files, run, queries, corpus, depth, quiet, skipped)
    if ray:
        if requests is None:
            _check_request_options(queries, corpus, output_format)  # Ray Data reads the request lines
        _answer_on_ray(files or ["-"], requests, options, RayRun(ray_address, ray_actors, output), field, top_n,
                       return_documents, output_format, tag, skipped, quiet, debug)
    else:
        if requests is None:
            requests = _request_lines(files, queries, corpus, output_format, field, quiet, skipped)
        _answer(requests, options, top_n, return_documents, output_format, tag, run is not None, quiet)
    if skipped is not None:
        skipped.summary()


def _request_lines(files: list[str] | None, queries: str | None, corpus: str | None, output_format: BatchFormat,
                   field: str, quiet: bool, skipped: SkipReport | None) -> Iterable[Request]:
    from ..records.requests import read_requests

    _check_request_options(queries, corpus, output_format)
    paths = check_sources(files or [])
    stdin_notice(paths, quiet)
    return read_requests(paths, field, skipped)


def _check_request_options(queries: str | None, corpus: str | None, output_format: BatchFormat) -> None:
    if queries is not None or corpus is not None:
        raise UsageError("--queries and --corpus go with --run RUN (a TREC run to re-rank)")
    if output_format is BatchFormat.trec:
        raise UsageError("--format trec needs --run (request lines carry no TREC query and document ids)")


def _run_requests(files: list[str] | None, run: str, queries: str | None, corpus: str | None, depth: int,
                  quiet: bool, skipped: SkipReport | None) -> Iterable[Request]:
    from ..records.trec import read_run, run_requests

    if files:
        raise UsageError("request FILEs and --run cannot be used together: give one or the other")
    if queries is None or corpus is None:
        raise UsageError("--run needs --queries FILE and --corpus FILE")
    check_sources([run, queries, corpus])
    ranking = read_run(run, depth, skipped)
    if ranking.duplicates and not quiet:
        n = len(ranking.duplicates)
        warn(f"{run}: {n} repeated (query, document) line{'s' if n != 1 else ''} ignored, the first of each kept "
             f"(first repeat at {ranking.duplicates[0]})")
    return run_requests(ranking, queries, corpus, skipped)


def _answer(requests: Iterable[Request], options: EngineOptions, top_n: int | None, return_documents: bool,
            output_format: BatchFormat, tag: str, run: bool, quiet: bool) -> None:
    from ..pipeline import answer_stream

    engine = load_engine(options, quiet)
    documents = _write(answer_stream(engine, requests, top_n), output_format, return_documents, tag, run)
    message = long_text_warning(engine, documents)
    if message and not quiet:
        warn(message)


def _write(groups: Iterator[list[Answer]], output_format: BatchFormat, return_documents: bool, tag: str,
           run: bool) -> int:
    """Write the answers to stdout as they come; returns how many documents they answered."""
    writer = open_answer_writer(output_format, sys.stdout, return_documents=return_documents, tag=tag, run=run)
    documents = 0
    try:
        for answers in groups:
            writer.write(answers)
            documents += sum(len(answer.request.texts) for answer in answers)
    except InputError:
        writer.close()  # the answers before the bad line stay usable: a closed JSON array, the table so far
        raise
    writer.close()
    return documents


def _answer_on_ray(files: list[str], requests: Iterable[Request] | None, options: EngineOptions, where: RayRun,
                   field: str, top_n: int | None, return_documents: bool, output_format: BatchFormat, tag: str,
                   skipped: SkipReport | None, quiet: bool, debug: bool) -> None:
    """Request lines read by Ray Data (or a TREC run's requests, built here) answered by model actors."""
    from ..scale import ray as scale

    run = requests is not None
    trec = output_format is BatchFormat.trec or (output_format is BatchFormat.auto and run)
    if where.output is not None and output_format not in (BatchFormat.auto, BatchFormat.jsonl, BatchFormat.trec):
        raise UsageError(f"--output writes JSONL or TREC parts, not --format {output_format.value}")
    with scale.connected(where.address, debug):
        ds = scale.request_lines(files) if requests is None else scale.held_requests(requests)
        ds = scale.answered(ds, options.kwargs(), actors=where.actors, threads=options.threads, field=field,
                            top_n=top_n)
        tally = scale.Tally()
        if where.output is not None:
            documents = scale.write_parts(ds, where.output, trec=trec, return_documents=return_documents, tag=tag,
                                          on_invalid=skipped, tally=tally)
        else:
            documents = _write(scale.in_order(ds, skipped, tally), output_format, return_documents, tag, run)
    message = long_text_message(tally.truncated, tally.chunked, documents, tally.max_length, tally.max_chunks)
    if message and not quiet:
        warn(message)
