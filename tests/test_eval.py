"""`rerank eval`: values equal trec_eval's (checked by hand and against ir-measures), tests, files, errors."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.evaluate import Missing, evaluate, paired_test, trec_order
from rerank_cli.records.qrels import read_qrels, read_run

runner = CliRunner()
EXAMPLES = Path(__file__).parents[1] / "examples"

# A hand-checked example. Relevance grades: q1 has four relevant documents (d9 never retrieved), q2 one,
# q3 one (no run retrieves q3: it is a judged query missing from the run), q9 in the run is not judged.
QRELS = """q1 0 d1 2
q1 0 d2 0
q1 0 d3 1
q1 0 d4 1
q1 0 d9 1
q2 0 d5 1
q3 0 d7 1
"""
# q1: trec_eval ranks by score, ties by docid in reverse: d2 d1 d8 d4 d3 (d4 and d3 tie at 1.0).
# q2: d5 and d6 tie at 4.0; in reverse docid order d6 comes first, so the relevant d5 is at rank 2.
RUN = """q1 Q0 d3 1 1.0 a
q1 Q0 d1 2 2.5 a
q1 Q0 d2 3 3.0 a
q1 Q0 d8 4 2.0 a
q1 Q0 d4 5 1.0 a
q2 Q0 d5 1 4.0 a
q2 Q0 d6 2 4.0 a
q9 Q0 d1 1 1.0 a
"""


def log2(x: float) -> float:
    return math.log(x, 2)


# Written out from the definitions trec_eval uses: gain = grade, discount log2(rank + 1), ideal from all
# judged grades; AP divides by every relevant document, retrieved or not; RR@10 is 1/rank of the first
# relevant document in the top 10; R@k is relevant retrieved in the top k over all relevant.
Q1 = {
    "nDCG@10": (2 / log2(3) + 1 / log2(5) + 1 / log2(6)) / (2 / log2(2) + 1 / log2(3) + 1 / log2(4) + 1 / log2(5)),
    "RR@10": 1 / 2,
    "AP": (1 / 2 + 2 / 4 + 3 / 5) / 4,
    "R@3": 1 / 4,
    "R@5": 3 / 4,
}
Q2 = {"nDCG@10": (1 / log2(3)) / 1, "RR@10": 1 / 2, "AP": 1 / 2, "R@3": 1.0, "R@5": 1.0}
NAMES = list(Q1)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "qrels.txt").write_text(QRELS)
    (tmp_path / "a.run").write_text(RUN)
    return tmp_path / "qrels.txt", tmp_path / "a.run"


def run_cli(*args: object, stdin: str | None = None):
    return runner.invoke(app, ["eval", *(str(a) for a in args)], input=stdin)


def test_values_equal_a_hand_computation_with_missing_queries_as_zero(files: tuple[Path, Path]) -> None:
    qrels, run = files
    [result] = evaluate(read_qrels(str(qrels)), [(str(run), read_run(str(run)))], NAMES, Missing.zero)
    assert result.per_query == {"q1": pytest.approx(Q1, abs=1e-12), "q2": pytest.approx(Q2, abs=1e-12),
                                "q3": dict.fromkeys(NAMES, 0.0)}
    assert result.measures == pytest.approx({n: (Q1[n] + Q2[n] + 0) / 3 for n in NAMES}, abs=1e-12)
    assert (result.unjudged, result.missing, result.p_values) == (1, 1, None)


def test_skip_leaves_missing_queries_out_of_the_mean(files: tuple[Path, Path]) -> None:
    qrels, run = files
    [result] = evaluate(read_qrels(str(qrels)), [(str(run), read_run(str(run)))], NAMES, Missing.skip)
    assert list(result.per_query) == ["q1", "q2"]
    assert result.measures == pytest.approx({n: (Q1[n] + Q2[n]) / 2 for n in NAMES}, abs=1e-12)


def test_ties_follow_trec_eval_reverse_docid_order() -> None:
    assert list(trec_order({"q": {"a": 1.0, "c": 1.0, "b": 2.0, "d": 0.5}})["q"]) == ["b", "c", "a", "d"]


def generated(seed: int) -> tuple[dict, dict, dict]:
    rng = random.Random(seed)
    qrels = {f"q{q}": {f"d{d}": rng.choice([0, 0, 0, 1, 2, 3]) for d in rng.sample(range(60), 25)} for q in range(30)}
    # Distinct scores, so that no tie-breaking rule is involved; some queries missing, some not judged.
    runs = [{f"q{q}": {f"d{d}": rng.random() for d in rng.sample(range(60), 40)} for q in range(3, 34)}
            for _ in range(2)]
    return qrels, runs[0], runs[1]


def test_values_equal_ir_measures_and_pytrec_eval_on_a_generated_example() -> None:
    import ir_measures
    import pytrec_eval

    qrels, run, _ = generated(7)
    measures = ["nDCG@10", "RR@10", "R@20", "AP", "P@5"]
    [result] = evaluate(qrels, [("r", run)], measures)
    expected = ir_measures.calc_aggregate([ir_measures.parse_measure(m) for m in measures], qrels, run)
    assert result.measures == pytest.approx({str(m): v for m, v in expected.items()}, abs=1e-12)
    # trec_eval's own code, straight: nDCG@10 per judged query the run retrieves.
    direct = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(run)
    assert {q: v["ndcg_cut_10"] for q, v in direct.items()} == pytest.approx(
        {q: v["nDCG@10"] for q, v in result.per_query.items() if q in run}, abs=1e-12)


def test_tied_scores_rank_as_in_trec_eval_for_every_measure() -> None:
    import pytrec_eval

    qrels, run, _ = generated(3)
    tied = {q: {d: round(score, 1) for d, score in docs.items()} for q, docs in run.items()}  # many ties
    [result] = evaluate(qrels, [("r", tied)], ["RR@100", "nDCG@10"], Missing.skip)
    direct = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "ndcg_cut_10"}).evaluate(tied)
    # RR@k comes from the MS MARCO script, which breaks ties the other way round when given the raw run.
    for pytrec_name, name in (("recip_rank", "RR@100"), ("ndcg_cut_10", "nDCG@10")):
        assert {q: v[pytrec_name] for q, v in direct.items()} == pytest.approx(
            {q: v[name] for q, v in result.per_query.items()}, abs=1e-12)


def test_p_value_is_a_paired_t_test_written_out() -> None:
    qrels, a, b = generated(11)
    first, second = evaluate(qrels, [("a", a), ("b", b)], ["nDCG@10", "AP"])
    from scipy.stats import t

    for name in ("nDCG@10", "AP"):
        diffs = [second.per_query[q][name] - first.per_query[q][name] for q in first.per_query]
        stat = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(len(diffs)))
        assert second.p_values is not None
        assert second.p_values[name] == pytest.approx(2 * t.sf(abs(stat), len(diffs) - 1), rel=1e-9)


def test_p_value_edges() -> None:
    same = {"q1": {"m": 0.5}, "q2": {"m": 0.25}}
    assert paired_test(same, same, "m") == 1.0  # no difference at all
    assert paired_test({"q1": {"m": 0.5}}, {"q1": {"m": 1.0}}, "m") is None  # one query pairs up: no test


def test_example_command_shows_a_table_with_marks_and_a_footer() -> None:
    result = run_cli("--qrels", EXAMPLES / "qrels.txt", EXAMPLES / "bm25.run", EXAMPLES / "reranked.run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["nDCG@10", "RR@10", "R@8", "queries", "run"]
    assert lines[1].split() == ["0.5463", "0.4833", "1.0000", "5", str(EXAMPLES / "bm25.run")]
    assert lines[2].split() == ["0.9650*", "1.0000*", "1.0000", "5", str(EXAMPLES / "reranked.run")]
    assert lines[3].startswith("* p < 0.05 against the first run") and "ttest_rel" in lines[3]
    assert result.stderr == ""


def test_json_has_one_object_per_run_and_p_values_after_the_first(files: tuple[Path, Path], tmp_path: Path) -> None:
    qrels, run = files
    other = tmp_path / "b.run"
    other.write_text(RUN.replace("d2 3 3.0", "d2 3 0.1"))  # d1 first for q1 now
    result = run_cli("--qrels", qrels, run, other, "--json", "-M", "nDCG@10", "-M", "ndcg_cut_5", "-M", "AP")
    assert result.exit_code == 0, result.stderr
    first, second = orjson.loads(result.stdout)
    assert first == {"run": str(run), "measures": pytest.approx({"nDCG@10": (Q1["nDCG@10"] + Q2["nDCG@10"]) / 3,
                                                                 "nDCG@5": first["measures"]["nDCG@5"],
                                                                 "AP": (Q1["AP"] + Q2["AP"]) / 3}), "queries": 3}
    assert second["run"] == str(other) and set(second["p_values"]) == {"nDCG@10", "nDCG@5", "AP"}
    assert second["measures"]["nDCG@10"] > first["measures"]["nDCG@10"]
    assert all(0 < p <= 1 for p in second["p_values"].values())
    assert result.stderr.count("1 query without judgments (not evaluated); 1 query judged but not in the run "
                               "(scored 0, --missing zero)") == 2


def test_per_query_json_and_table(files: tuple[Path, Path]) -> None:
    qrels, run = files
    result = run_cli("--qrels", qrels, run, "--json", "--per-query", "-M", "RR@10", "--missing", "skip")
    [obj] = orjson.loads(result.stdout)
    assert obj["per_query"] == {"q1": {"RR@10": 0.5}, "q2": {"RR@10": 0.5}} and obj["queries"] == 2
    assert "left out, --missing skip" in result.stderr
    table = run_cli("--qrels", qrels, run, "--per-query", "-M", "RR@10", "--quiet")
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["RR@10", "query", "run"] and rows[1] == ["0.5000", "q1", str(run)]
    assert rows[3] == ["0.0000", "q3", str(run)] and rows[4] == []  # then the means
    assert rows[5:] == [["RR@10", "queries", "run"], ["0.3333", "3", str(run)]]
    assert table.stderr == ""


def test_beir_qrels_give_the_same_values(files: tuple[Path, Path], tmp_path: Path) -> None:
    qrels, run = files
    beir = tmp_path / "qrels.tsv"
    lines = [line.split() for line in QRELS.splitlines()]
    beir.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, _, d, r in lines))
    assert read_qrels(str(beir)) == read_qrels(str(qrels))
    out = [orjson.loads(run_cli("--qrels", path, run, "--json").stdout) for path in (qrels, beir)]
    assert out[0] == out[1] and "R@5" in out[0][0]["measures"]  # the default R@depth: 5 documents at most


def test_an_empty_run_scores_zero_on_every_judged_query(files: tuple[Path, Path], tmp_path: Path) -> None:
    qrels, _ = files
    (tmp_path / "empty.run").write_text("")
    result = run_cli("--qrels", qrels, tmp_path / "empty.run", "--json", "-M", "AP", "-M", "Judged@5")
    assert orjson.loads(result.stdout)[0]["measures"] == {"AP": 0.0, "Judged@5": 0.0}
    assert "3 queries judged but not in the run (scored 0, --missing zero)" in result.stderr


def test_run_or_qrels_from_stdin(files: tuple[Path, Path]) -> None:
    qrels, run = files
    result = run_cli("--qrels", qrels, "-", "--json", "-M", "AP", stdin=RUN)
    assert result.exit_code == 0 and orjson.loads(result.stdout)[0]["measures"]["AP"] == pytest.approx(
        (Q1["AP"] + Q2["AP"]) / 3)
    assert orjson.loads(run_cli("--qrels", "-", run, "--json", "-M", "AP", stdin=QRELS).stdout) == orjson.loads(
        run_cli("--qrels", qrels, run, "--json", "-M", "AP").stdout)
    bad = run_cli("--qrels", qrels, "-", stdin="q1 Q0 d1 1 2.0\n")
    assert bad.exit_code == 65 and bad.stderr.startswith("rerank: error: <stdin>:1: expected 6 columns")


@pytest.mark.parametrize(("which", "text", "reason"), [
    ("run", "q1 Q0 d1 1 2.0\n", "a.run:1: expected 6 columns (qid Q0 docid rank score tag), found 5"),
    ("run", "q1 Q0 d1 1 2.0 a\nq1 Q0 d2 2 high a\n", "a.run:2: score 'high' is not a number"),
    ("run", '{"index": 0, "score": 1.5, "text": "a"}\n', "a.run:1: a JSON line, not a TREC run line (qid Q0 docid "
                                                       "rank score tag); `rerank batch --format trec` writes runs"),
    ("run", "q1 Q0 d1 1 nan a\n", "a.run:1: score is NaN"),
    ("run", "q1 Q0 d1 1 2.0 a\n\nq1 Q0 d1 2 1.0 a\n", "a.run:3: document 'd1' is listed twice for query 'q1'"),
    ("run", b"q1 Q0 d\xff 1 2.0 a\n", "a.run:1: invalid UTF-8 at byte 7"),
    ("qrels", "q1 0 d1 1\nq1 0 d2 yes\n", "qrels.txt:2: relevance 'yes' is not an integer"),
    ("qrels", "q1 0 d1 1\nq1 d2 1\n", "qrels.txt:2: expected 4 columns (qid iter docid rel), found 3"),
    ("qrels", "q1 d1\n", "qrels.txt:1: expected 4 columns (qid iter docid rel) or 3 (query-id corpus-id score, "
                         "BEIR), found 2"),
    ("qrels", "q1 0 d1 1\nq1 0 d1 2\n", "qrels.txt:2: document 'd1' is judged twice for query 'q1'"),
    ("qrels", "\n", "qrels.txt: no judgments in the file"),
])
def test_bad_files_are_located_errors(files: tuple[Path, Path], which: str, text: str | bytes, reason: str) -> None:
    qrels, run = files
    target = run if which == "run" else qrels
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = run_cli("--qrels", qrels, run)
    assert result.exit_code == 65 and result.stdout == ""
    assert result.stderr == f"rerank: error: {target.parent}/{reason}\n"


def test_missing_files_and_bad_options(files: tuple[Path, Path], tmp_path: Path) -> None:
    qrels, run = files
    missing = run_cli("--qrels", qrels, run, tmp_path / "nope.run")
    assert missing.exit_code == 66 and missing.stderr == f"rerank: error: {tmp_path / 'nope.run'}: no such file\n"
    assert run_cli("--qrels", tmp_path / "nope", run).exit_code == 66
    unknown = run_cli("--qrels", qrels, run, "-M", "nDCG@ten")
    assert unknown.exit_code == 2 and "unknown measure 'nDCG@ten'" in unknown.stderr
    # Known to ir-measures, but only through an implementation other than trec_eval's (a Perl script).
    other = run_cli("--qrels", qrels, run, "-M", "nDCG(dcg='exp-log2')@10")
    assert other.exit_code == 2 and "is not one rerank eval computes" in other.stderr
    assert run_cli("--qrels", qrels, run, "-M", "SDCG@5").stderr == ("rerank: error: measure 'SDCG@5': invalid "
                                                                    "param max_rel\n")
    assert run_cli("--qrels", qrels, "-", "-", stdin=RUN).exit_code == 2
    assert run_cli("--qrels", "-", "-", stdin=RUN).exit_code == 2
    assert run_cli("--qrels", qrels).exit_code == 2  # a RUN is required


@pytest.mark.parametrize("measure", ["nDCG@0", "ndcg_cut_0", "P@0", "Judged@0", "RR@0"])
def test_a_cutoff_of_zero_is_a_usage_error(measure: str) -> None:
    # A stranger's test: trec_eval aborted the process (exit 134) and Judged@0 divided by zero.
    result = CliRunner().invoke(app, ["eval", "--qrels", "examples/qrels.txt", "-M", measure, "examples/bm25.run"])
    assert result.exit_code == 2 and "the cutoff must be 1 or more" in result.stderr


def test_shipped_quality_slice_evaluates_and_its_corpus_covers_the_run() -> None:
    # examples/quality/ is a slice of benchmarks/quality.py's held-out set (CPython docstrings).
    slice_ = EXAMPLES / "quality"
    result = runner.invoke(app, ["eval", "--qrels", str(slice_ / "qrels.txt"), str(slice_ / "bm25.run"), "--json"])
    assert result.exit_code == 0, result.stderr
    (row,) = orjson.loads(result.stdout)
    assert row["queries"] == 20
    assert 0.1 < row["measures"]["nDCG@10"] < 0.9
    corpus = {orjson.loads(line)["_id"] for line in (slice_ / "corpus.jsonl").read_text().splitlines()}
    named = {line.split()[2] for line in (slice_ / "bm25.run").read_text().splitlines()}
    judged = {line.split()[2] for line in (slice_ / "qrels.txt").read_text().splitlines()}
    assert named | judged <= corpus
    assert {line.split("\t")[0] for line in (slice_ / "queries.tsv").read_text().splitlines()} == {
        line.split()[0] for line in (slice_ / "qrels.txt").read_text().splitlines()}
