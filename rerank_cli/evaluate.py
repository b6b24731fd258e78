"""Runs + qrels -> IR measures and paired significance tests, for `rerank eval`. No terminal code.

Measures come from ir-measures, under their standard names (`nDCG@10`, `RR@10`, `R@100`, `AP`): it runs
trec_eval's own code (pytrec_eval) for nDCG, AP, R, P and the rest of trec_eval's measures, and the MS
MARCO script for RR@k. Before a run is handed over, its documents are put in trec_eval's order (score,
highest first; ties by document id in reverse order) and re-scored by that position, so that every
measure, whichever implementation computes it, sees the same ranking trec_eval would.

Every run after the first is compared with the first by a paired two-sided t-test over per-query
values (scipy.stats.ttest_rel), one test per measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import UsageError
from .records.qrels import Qrels, Run

DEFAULT_MEASURES = ("nDCG@10", "RR@10")
"""Shown with R@<depth>, the recall at the deepest rank in the runs (how deep they were re-ranked)."""
SIGNIFICANCE = 0.05
TEST_NAME = "paired two-sided t-test over per-query values (scipy.stats.ttest_rel)"


class Missing(str, Enum):
    """What a judged query that a run leaves out counts as: zero (trec_eval -c) or nothing (skipped)."""

    zero = "zero"
    skip = "skip"


@dataclass(frozen=True, slots=True)
class RunResult:
    """One run's measures (the mean over its evaluated queries), per-query values and p-values."""

    run: str
    measures: dict[str, float]
    per_query: dict[str, dict[str, float]]
    p_values: dict[str, float | None] | None  # None for the first run, the baseline
    unjudged: int  # queries in the run that have no judgments: not evaluated
    missing: int  # judged queries that the run leaves out: zero or skipped, as --missing says


def default_measures(runs: Sequence[Run]) -> list[str]:
    """nDCG@10, RR@10 and R@<depth>, where depth is the most documents any run ranks for a query."""
    depth = max((len(docs) for run in runs for docs in run.values()), default=0)
    return [*DEFAULT_MEASURES, f"R@{max(depth, 1)}"]


def parse_measures(names: Sequence[str]) -> list[Any]:
    """ir-measures objects for standard names (`nDCG@10`) or trec_eval names (`ndcg_cut_10`); else UsageError."""
    import ir_measures

    parsed: list[Any] = []
    for name in names:
        try:
            parsed.append(ir_measures.parse_measure(name))
            continue
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError, KeyError):
            pass
        try:
            parsed.extend(ir_measures.parse_trec_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError, KeyError):
            raise UsageError(f"unknown measure {name!r}; standard names such as nDCG@10, RR@10, R@100, AP, "
                             "P@5 (or trec_eval's, such as ndcg_cut_10)", param="measure") from None
    unique = list(dict.fromkeys(parsed))
    for measure in unique:
        try:
            measure.validate_params()
        except AssertionError as exc:  # ir-measures checks parameters with assert: SDCG@5 needs max_rel
            reason = str(exc).split("=")[0]  # "invalid param max_rel=<object ...>": the name is the news
            raise UsageError(f"measure {str(measure)!r}: {reason}", param="measure") from None
        cutoff = measure.params.get("cutoff")
        if cutoff is not None and (not isinstance(cutoff, int) or cutoff < 1):
            # trec_eval aborts the process on a cutoff of 0 and ir-measures divides by it: refuse it here.
            raise UsageError(f"measure {str(measure)!r}: the cutoff must be 1 or more", param="measure")
        if not _provider().supports(measure):
            raise UsageError(f"measure {str(measure)!r} is not one rerank eval computes: those of trec_eval "
                             "(pytrec_eval), RR@k and Judged@k", param="measure")
    return unique


def _provider() -> Any:
    """ir-measures restricted to the implementations whose values are trec_eval's (or, for RR@k, which
    trec_eval lacks, the MS MARCO script's on trec_eval's order), and which run in-process: its default
    pipeline would fall back to others for some measures (gdeval, a Perl script, for exp-log2 nDCG)."""
    import ir_measures
    from ir_measures.providers import FallbackProvider

    return FallbackProvider([ir_measures.pytrec_eval, ir_measures.msmarco, ir_measures.judged])


def trec_order(run: Run) -> Run:
    """The run re-scored by trec_eval's order: score, highest first; ties by document id, in reverse order."""
    ordered: Run = {}
    for qid, docs in run.items():
        ranking = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)
        ordered[qid] = {docid: float(len(ranking) - i) for i, (docid, _) in enumerate(ranking)}
    return ordered


def evaluate(qrels: Qrels, runs: Sequence[tuple[str, Run]], measure_names: Sequence[str],
             missing: Missing = Missing.zero) -> list[RunResult]:
    """Measure every run against the qrels; runs after the first get a p-value per measure against it.

    Runs' queries without judgments are not evaluated (as in trec_eval). Judged queries a run leaves
    out count as zero for every measure with `Missing.zero` (trec_eval -c), or are left out of its mean
    with `Missing.skip` (trec_eval's default).
    """
    measures = parse_measures(measure_names)
    names = [str(m) for m in measures]
    evaluator = _provider().evaluator(measures, qrels)
    results: list[RunResult] = []
    for path, run in runs:
        per_query: dict[str, dict[str, float]] = {}
        kept = set(qrels) if missing is Missing.zero else set(qrels) & set(run)
        # iter_calc gives each judged query the run leaves out its measure's default, 0: trec_eval -c.
        for metric in evaluator.iter_calc(trec_order({q: d for q, d in run.items() if q in qrels})):
            if metric.query_id in kept:
                per_query.setdefault(metric.query_id, {})[str(metric.measure)] = float(metric.value)
        # The qrels' query order, and the measures in the order asked for.
        ordered = {q: {n: per_query[q][n] for n in names} for q in qrels if q in per_query}
        means = {n: _mean([values[n] for values in ordered.values()]) for n in names}
        baseline = results[0].per_query if results else None
        p_values = None if baseline is None else {n: paired_test(baseline, ordered, n) for n in names}
        results.append(RunResult(path, means, ordered, p_values, unjudged=len(set(run) - set(qrels)),
                                 missing=len(set(qrels) - set(run))))
    return results


def paired_test(first: dict[str, dict[str, float]], other: dict[str, dict[str, float]], name: str) -> float | None:
    """The two-sided p-value of a paired t-test on the queries both runs were evaluated on.

    None when fewer than two queries pair up; 1.0 when every per-query value is the same in both runs
    (no difference at all, where the t statistic is undefined).
    """
    queries = [q for q in first if q in other]
    a = [first[q][name] for q in queries]
    b = [other[q][name] for q in queries]
    if len(queries) < 2:
        return None
    if a == b:
        return 1.0
    import warnings

    from scipy.stats import ttest_rel

    with warnings.catch_warnings():  # scipy warns of precision loss on near-identical values: not the user's
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_rel(b, a).pvalue)
    return None if p != p else p  # NaN: undefined


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
