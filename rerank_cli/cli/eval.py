"""`rerank eval`: measure TREC runs against relevance judgments, with significance against the first run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..evaluate import SIGNIFICANCE, TEST_NAME, Missing
from ..records.record import printable
from .console import say
from .options import Debug, Quiet
from .scoring import set_debug

if TYPE_CHECKING:
    from ..evaluate import RunResult

Runs = Annotated[list[str], typer.Argument(metavar="RUN", show_default=False,
                                           help="TREC runs (qid Q0 docid rank score tag); - is stdin. "
                                                "The first is the baseline of the significance tests.")]
QrelsOpt = Annotated[str, typer.Option("--qrels", metavar="FILE", show_default=False,
                                       help="Judgments: TREC qrels (qid iter docid rel) or BEIR TSV "
                                            "(query-id corpus-id score, with its header); - is stdin.")]
Measures = Annotated[Optional[list[str]], typer.Option(
    "--measure", "-M", metavar="NAME", show_default=False,
    help="A measure by its ir-measures name (nDCG@10, RR@10, R@100, AP, P@5) or trec_eval name (ndcg_cut_10); "
         "repeat for more [default: nDCG@10, RR@10 and R@DEPTH, DEPTH the most documents a run ranks for a query].")]
MissingOpt = Annotated[Missing, typer.Option(
    "--missing", help="Judged queries a run leaves out: zero scores them 0 (trec_eval -c), skip leaves them out "
                      "of that run's means.")]
PerQuery = Annotated[bool, typer.Option("--per-query", help="Also show every query's values.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for scripts: one object per run with measures and "
                                      "p_values (and per_query with --per-query).")]


def eval_runs(
    ctx: typer.Context, runs: Runs, qrels: QrelsOpt, measure: Measures = None,
    missing: MissingOpt = Missing.zero, per_query: PerQuery = False, as_json: AsJson = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Measure TREC runs against relevance judgments: one row per run, one column per measure.

    Values are trec_eval's (through ir-measures): documents are ranked by score, ties by document id
    in reverse order; the rank column is not used. Queries without judgments are not evaluated. Every
    run after the first gets a paired two-sided t-test per measure against the first (per-query values,
    scipy.stats.ttest_rel): `*` marks p < 0.05; --json gives the p-values.

    \b
    Examples:
      rerank eval --qrels examples/qrels.txt examples/bm25.run examples/reranked.run
      rerank eval --qrels qrels.tsv -M nDCG@10 -M AP --json run.trec
      rerank batch ... --format trec | rerank eval --qrels qrels.txt bm25.run -
    """
    from ..evaluate import default_measures, evaluate
    from ..records.qrels import STDIN, check_file, read_qrels, read_run

    set_debug(ctx, debug)
    if [qrels, *runs].count(STDIN) > 1:
        raise UsageError("only one input can be - (stdin): the qrels or one RUN")
    for path in [qrels, *runs]:
        check_file(path)  # every missing file is found before any work
    judged = read_qrels(qrels)
    loaded = [(path, read_run(path)) for path in runs]
    names = measure or default_measures([run for _, run in loaded])
    results = evaluate(judged, loaded, names, missing)
    if not quiet:
        for result in results:
            _report_coverage(result, missing)
    if as_json:
        _write_json(results, per_query)
    else:
        _write_tables(results, per_query)


def _report_coverage(result: RunResult, missing: Missing) -> None:
    """Say on stderr which queries were not evaluated as they are: the trec_eval -c question."""
    parts = []
    if result.unjudged:
        parts.append(f"{_queries(result.unjudged)} without judgments (not evaluated)")
    if result.missing:
        fate = "scored 0, --missing zero" if missing is Missing.zero else "left out, --missing skip"
        parts.append(f"{_queries(result.missing)} judged but not in the run ({fate})")
    if parts:
        say(f"{result.run}: " + "; ".join(parts))


def _queries(n: int) -> str:
    return f"{n} quer{'y' if n == 1 else 'ies'}"


def _write_json(results: list[RunResult], per_query: bool) -> None:
    import orjson

    objects: list[dict[str, Any]] = []
    for r in results:
        obj: dict[str, Any] = {"run": r.run, "measures": r.measures}
        if r.p_values is not None:
            obj["p_values"] = r.p_values
        obj["queries"] = len(r.per_query)
        if per_query:
            obj["per_query"] = r.per_query
        objects.append(obj)
    sys.stdout.buffer.write(orjson.dumps(objects, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.buffer.flush()


def _write_tables(results: list[RunResult], per_query: bool) -> None:
    names = list(results[0].measures)
    text = ""
    if per_query:
        rows = [[f"{values[n]:.4f}" for n in names] + [qid, r.run]
                for r in results for qid, values in r.per_query.items()]
        text += _table([*names, "query", "run"], rows, right=len(names)) + "\n"
    rows = [[_cell(r, n) for n in names] + [str(len(r.per_query)), r.run] for r in results]
    text += _table([*names, "queries", "run"], rows, right=len(names) + 1)
    if len(results) > 1:
        text += f"* p < {SIGNIFICANCE} against the first run ({printable(results[0].run)}): {TEST_NAME}\n"
    sys.stdout.write(text)
    sys.stdout.flush()


def _table(headers: list[str], rows: list[list[str]], right: int) -> str:
    """Plain aligned columns, nothing cut: run paths and query ids stay whole however narrow the terminal.

    (records/writers.print_table cuts its last column to the terminal, which suits documents, not paths.)
    The first `right` columns are numbers, right-aligned; the rest are left-aligned.
    """
    cells = [[printable(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i < right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in cells]
    return "\n".join(lines) + "\n"


def _cell(result: RunResult, name: str) -> str:
    """A mean for display, with `*` when it differs significantly from the first run's."""
    p = None if result.p_values is None else result.p_values[name]
    return f"{result.measures[name]:.4f}" + ("*" if p is not None and p < SIGNIFICANCE else " ")
