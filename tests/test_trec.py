"""`rerank batch --run`: TREC runs re-ranked from BEIR or TSV queries and corpora, written as TREC runs."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from conftest import BERT
from typer.testing import CliRunner

from rerank_cli.cli.app import app

runner = CliRunner()
QUERIES = {"q1": "what is the capital of france", "q2": "python programming"}
CORPUS = {  # _id -> (title, text)
    "d1": ("Paris", "Paris is the capital of France."),
    "d2": ("", "Berlin is in Germany."),
    "d3": ("Python", "A programming language with snakes in its name."),
    "d4": ("Lyon", "A city in France."),
    "unused": ("x", "never named by the run"),
}
# The rank column disagrees with the scores on purpose: tools (and --depth) go by score.
RUN = """q1 Q0 d2 1 7.5 bm25
q1 Q0 d1 2 9.0 bm25
q1 Q0 d3 3 1.0 bm25
q1 Q0 d4 4 3.25 bm25
q2 Q0 d3 1 12 bm25
q2 Q0 d1 2 11 bm25
"""


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def beir_text(docid: str) -> str:
    title, text = CORPUS[docid]
    return (title + " " + text).strip()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("run.trec", "queries.tsv", "queries.jsonl", "corpus.jsonl",
                                                "corpus.tsv")}
    paths["run.trec"].write_text(RUN)
    paths["queries.tsv"].write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    paths["queries.jsonl"].write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    paths["corpus.jsonl"].write_text("".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n"
                                             for d, (t, x) in CORPUS.items()))
    paths["corpus.tsv"].write_text("".join(f"{d}\t{beir_text(d)}\n" for d in CORPUS))
    return paths


def parse_run(text: str) -> list[tuple[str, str, int, float, str]]:
    """A TREC run as trec_eval reads it: exactly 6 whitespace-separated columns, Q0, int rank, float score."""
    rows = []
    for line in text.splitlines():
        qid, q0, docid, rank, score, tag = line.split()  # raises unless exactly 6 columns
        assert q0 == "Q0"
        rows.append((qid, docid, int(rank), float(score), tag))
    return rows


def scores_of(query: str, docs: list[str]) -> list[float]:
    stdin = "".join(json.dumps(d) + "\n" for d in docs)
    result = runner.invoke(app, ["score", "-m", str(BERT), "-q", query, "--quiet"], input=stdin)
    return [orjson.loads(line)["score"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize(("queries", "corpus"), [("queries.tsv", "corpus.jsonl"), ("queries.jsonl", "corpus.tsv")])
def test_trec_round_trip(files: dict[str, Path], queries: str, corpus: str) -> None:
    result = run("batch", "-m", BERT, "--run", files["run.trec"], "--queries", files[queries],
                 "--corpus", files[corpus], "--tag", "ce")
    assert result.exit_code == 0, result.stderr
    rows = parse_run(result.stdout)  # the default output of --run is a TREC run
    assert [r[0] for r in rows] == ["q1"] * 4 + ["q2"] * 2
    for qid in QUERIES:
        mine = [r for r in rows if r[0] == qid]
        assert [r[2] for r in mine] == list(range(1, len(mine) + 1))
        assert [r[3] for r in mine] == sorted((r[3] for r in mine), reverse=True)
        assert {r[4] for r in mine} == {"ce"}
        docids = [r[1] for r in mine]
        expected = dict(zip(docids, scores_of(QUERIES[qid], [beir_text(d) for d in docids])))
        assert {r[1]: r[3] for r in mine} == expected  # the text scored is BEIR's (title + " " + text).strip()
    # A run in, a run out: the output can be re-ranked again.
    again = files["run.trec"].with_name("again.trec")
    again.write_text(result.stdout)
    second = run("batch", "-m", BERT, "--run", again, "--queries", files[queries], "--corpus", files[corpus],
                 "--tag", "ce")
    assert second.exit_code == 0 and second.stdout == result.stdout


def test_depth_takes_the_best_by_score_and_jsonl_names_the_ids(files: dict[str, Path]) -> None:
    result = run("batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
                 "--corpus", files["corpus.jsonl"], "--depth", "2", "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    q1, q2 = (orjson.loads(line) for line in result.stdout.splitlines())
    assert q1["qid"] == "q1" and {r["id"] for r in q1["results"]} == {"d1", "d2"}  # scores 9.0 and 7.5
    assert {r["id"] for r in q2["results"]} == {"d3", "d1"}
    assert list(q1["results"][0]) == ["index", "id", "relevance_score"]


def test_duplicate_doc_ids_keep_the_first_and_warn(files: dict[str, Path]) -> None:
    files["run.trec"].write_text(RUN + "q1 Q0 d1 5 0.5 bm25\nq2 Q0 d3 3 1 bm25\n")
    result = run("batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
                 "--corpus", files["corpus.jsonl"], "--depth", "2")
    assert result.exit_code == 0, result.stderr
    rows = parse_run(result.stdout)
    assert sorted((r[0], r[1]) for r in rows) == [("q1", "d1"), ("q1", "d2"), ("q2", "d1"), ("q2", "d3")]
    assert result.stderr == (f"rerank: warning: {files['run.trec']}: 2 repeated (query, document) lines ignored, "
                             f"the first of each kept (first repeat at {files['run.trec']}:7)\n")


def test_a_query_missing_from_the_queries_file_is_located(files: dict[str, Path]) -> None:
    files["queries.tsv"].write_text(f"q1\t{QUERIES['q1']}\n")
    args = ["batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
            "--corpus", files["corpus.jsonl"]]
    result = run(*args)
    assert result.exit_code == 65 and result.stdout == ""
    assert result.stderr == f"rerank: error: {files['run.trec']}:5: query 'q2' is not in {files['queries.tsv']}\n"
    skipped = run(*args, "--skip-invalid")
    assert skipped.exit_code == 0, skipped.stderr
    assert {r[0] for r in parse_run(skipped.stdout)} == {"q1"}
    assert "skipped" in skipped.stderr and "query 'q2'" in skipped.stderr


def test_a_document_missing_from_the_corpus_is_located(files: dict[str, Path]) -> None:
    files["corpus.tsv"].write_text("".join(f"{d}\t{beir_text(d)}\n" for d in CORPUS if d != "d4"))
    args = ["batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
            "--corpus", files["corpus.tsv"]]
    result = run(*args)
    assert result.exit_code == 65
    assert result.stderr == f"rerank: error: {files['run.trec']}:4: document 'd4' is not in {files['corpus.tsv']}\n"
    skipped = run(*args, "--skip-invalid")
    assert skipped.exit_code == 0
    assert [r[1] for r in parse_run(skipped.stdout) if r[0] == "q1"].count("d4") == 0
    assert len(parse_run(skipped.stdout)) == 5


@pytest.mark.parametrize(("name", "content", "message"), [
    ("run.trec", "q1 Q0 d1 1 9.0\n", "run.trec:1: expected 6 columns (qid Q0 docid rank score tag), found 5"),
    ("run.trec", "q1 Q0 d1 1 high bm25\n", "run.trec:1: score 'high' is not a number"),
    ("queries.tsv", "q1 no tab here\n", "queries.tsv:1: expected `qid<TAB>text` (no tab in the line)"),
    ("corpus.jsonl", '{"_id": "d1", "text": 3}\n', "corpus.jsonl:1: 'text' is a number, not a string"),
    ("corpus.jsonl", '{"title": "x", "text": "y"}\n', "corpus.jsonl:1: no '_id' in the document"),
    ("corpus.jsonl", '{"_id": "d1", "text": \n', "corpus.jsonl:1: invalid JSON"),
])
def test_bad_lines_are_located(files: dict[str, Path], name: str, content: str, message: str) -> None:
    files[name].write_text(content)
    result = run("batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
                 "--corpus", files["corpus.jsonl"])
    assert result.exit_code == 65
    assert result.stderr.startswith(f"rerank: error: {files[name].parent}/{message}")


def test_missing_files_are_exit_66(files: dict[str, Path]) -> None:
    result = run("batch", "-m", BERT, "--run", files["run.trec"], "--queries", files["queries.tsv"],
                 "--corpus", files["run.trec"].with_name("nope.jsonl"))
    assert result.exit_code == 66 and "nope.jsonl: no such file" in result.stderr


def test_depth_cuts_ties_in_trec_eval_order_and_tags_are_one_word(tmp_path: Path) -> None:
    # A stranger's test: equal scores at the cutoff kept file order (trec_eval: docid descending), and
    # --tag "" or "my run" wrote runs with the wrong number of columns.
    run_file = tmp_path / "run.trec"
    run_file.write_text("q1 Q0 d1 1 5 x\nq1 Q0 d2 2 5 x\nq1 Q0 d3 3 9 x\n")
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tcapital of france\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d, "title": None, "text": f"doc {d}"}) + "\n"
                              for d in ("d1", "d2", "d3")))  # BEIR's untitled documents: "title": null
    base = ["batch", "-m", str(BERT), "--run", str(run_file), "--queries", str(queries), "--corpus", str(corpus)]
    result = runner.invoke(app, [*base, "--depth", "2"])
    assert result.exit_code == 0, result.stderr
    assert sorted(line.split()[2] for line in result.stdout.splitlines()) == ["d2", "d3"]
    for tag in ("", "my run", "a\tb"):
        bad = runner.invoke(app, [*base, "--tag", tag])
        assert bad.exit_code == 2 and "--tag" in bad.stderr


def test_rerank_queries_reads_tsv_ids(tmp_path: Path) -> None:
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tcapital of france\nq2\tberlin\n")
    docs = tmp_path / "d.jsonl"
    docs.write_text('{"text": "Paris"}\n{"text": "Berlin"}\n')
    result = runner.invoke(app, ["rerank", "--queries", str(queries), "-m", str(BERT), str(docs), "--return-query"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["query_id"], r["query"]) for r in rows} == {("q1", "capital of france"), ("q2", "berlin")}
