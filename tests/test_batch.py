"""`rerank batch` request lines and `rerank rerank --queries`: shapes, scores, bad requests, flat memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import BERT, XLMR
from typer.testing import CliRunner

from rerank_cli.cli.app import app

runner = CliRunner()
QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "The capital of France is Paris, a big city.",
        "", "Paris is the capital of France."]


def run(*args: object, stdin: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def jsonl(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def score_of(query: str, docs: list[str], *options: object) -> list[float]:
    """What `rerank score` gives for these documents, in input order."""
    stdin = "".join(json.dumps(d) + "\n" for d in docs)
    result = run("score", "-q", query, "--quiet", *options, "-", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    return [r["score"] for r in jsonl(result.stdout)]


def best_first(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("options", [("-m", BERT), ("-m", XLMR, "--activation", "sigmoid", "--max-length", "12")],
                         ids=["bert", "xlmr-sigmoid-12"])
def test_scores_equal_rerank_score_and_rank_best_first(tmp_path: Path, options: tuple) -> None:
    requests = write_lines(tmp_path / "r.jsonl", [
        {"query": QUERY, "documents": DOCS},
        {"query": "python", "documents": ["a snake", "a programming language"]},
        {"query": "", "documents": ["an empty query is valid"]},
    ])
    result = run("batch", *options, requests, "--quiet")
    assert result.exit_code == 0, result.stderr
    answers = jsonl(result.stdout)
    assert len(answers) == 3
    for answer, (query, docs) in zip(answers, [(QUERY, DOCS), ("python", ["a snake", "a programming language"]),
                                               ("", ["an empty query is valid"])]):
        expected = score_of(query, docs, *options)
        assert [r["index"] for r in answer["results"]] == best_first(expected)  # ties (0 and 4) in input order
        assert [r["relevance_score"] for r in answer["results"]] == [expected[i] for i in best_first(expected)]
        assert all(list(r) == ["index", "relevance_score"] for r in answer["results"])


def test_every_request_shape(tmp_path: Path) -> None:
    requests = write_lines(tmp_path / "r.jsonl", [
        {"id": "a", "query": QUERY, "documents": DOCS[:3], "top_n": 10, "model": "x", "meta": {"n": 1}},
        {"id": "b", "query": QUERY, "documents": []},
        {"id": "c", "query": QUERY, "documents": [{"body": "Paris.", "k": 1}, {"body": "Berlin.", "k": 2}],
         "top_n": 1},
        {"query": QUERY, "documents": ["x", "y"], "results": "theirs", "return_documents": False},
    ])
    result = run("batch", "-m", BERT, requests, "--field", "body", "--return-documents", "--top-n", "2")
    assert result.exit_code == 0, result.stderr
    a, b, c, d = jsonl(result.stdout)
    # Pass-through keys in input order, then results; the request's top_n (10 > 3) wins over --top-n.
    assert list(a) == ["id", "model", "meta", "results"] and a["meta"] == {"n": 1}
    assert len(a["results"]) == 3 and {r["document"] for r in a["results"]} == set(DOCS[:3])
    assert b == {"id": "b", "results": []}
    best = best_first(score_of(QUERY, ["Paris.", "Berlin."], "-m", BERT))[0]
    assert [r["document"] for r in c["results"]] == [[{"body": "Paris.", "k": 1}, {"body": "Berlin.", "k": 2}][best]]
    assert list(c["results"][0]) == ["index", "relevance_score", "document"]
    # A request's own `results` is kept as input_results; its return_documents: false wins; --top-n cuts.
    assert list(d) == ["input_results", "results"] and d["input_results"] == "theirs"
    assert len(d["results"]) == 2 and "document" not in d["results"][0]


def test_top_n_option_and_stdin(tmp_path: Path) -> None:
    stdin = json.dumps({"query": QUERY, "documents": DOCS}) + "\n\n"
    result = run("batch", "-m", BERT, "--top-n", "2", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    [answer] = jsonl(result.stdout)
    expected = score_of(QUERY, DOCS, "-m", BERT)
    assert [r["index"] for r in answer["results"]] == best_first(expected)[:2]


@pytest.mark.parametrize(("line", "message"), [
    ({"documents": ["a"]}, "no 'query' in the request (keys: documents)"),
    ({"query": 3, "documents": ["a"]}, "'query' is a number, not a string"),
    ({"query": "q"}, "no 'documents' list in the request (keys: query)"),
    ({"query": "q", "documents": "a"}, "'documents' is a string, not an array"),
    ({"query": "q", "documents": ["a", 7]}, "documents[1] is a number, not a string or an object"),
    ({"query": "q", "documents": [{"title": "a"}]}, "documents[0] has no 'text' field (fields: title); name the "
                                                    "text field with --field"),
    ({"query": "q", "documents": [{"text": None}]}, "documents[0] field 'text' is null, not a string"),
    ({"query": "q", "documents": [], "top_n": 0}, "'top_n' must be a positive integer or null, not 0"),
    ({"query": "q", "documents": [], "top_n": "3"}, "'top_n' must be a positive integer or null, not a string"),
    ({"query": "q", "documents": [], "top_n": True}, "'top_n' must be a positive integer or null, not a boolean"),
    ({"query": "q", "documents": [], "return_documents": "yes"}, "'return_documents' is a string, not true or false"),
    ('"q"', 'expected a request object {"query": ..., "documents": [...]}, got a string'),
    (["q", "a"], "expected a JSON object or string, got an array"),
    ('{"query": "q", "documents": [', "invalid JSON"),
])
def test_bad_requests_are_located_and_skippable(tmp_path: Path, line: object, message: str) -> None:
    good = {"id": 1, "query": QUERY, "documents": DOCS[:2]}
    requests = write_lines(tmp_path / "r.jsonl", [good, line, {**good, "id": 3}])
    result = run("batch", "-m", BERT, requests)
    assert result.exit_code == 65
    assert result.stderr.startswith(f"rerank: error: {requests}:2: {message}")
    assert [a["id"] for a in jsonl(result.stdout)] == [1]  # nothing before the bad request is lost
    skipped = run("batch", "-m", BERT, requests, "--skip-invalid")
    assert skipped.exit_code == 0, skipped.stderr
    assert [a["id"] for a in jsonl(skipped.stdout)] == [1, 3]
    assert skipped.stderr.startswith(f"rerank: warning: skipped {requests}:2: {message}")
    assert skipped.stderr.endswith("rerank: warning: skipped 1 invalid record (--skip-invalid)\n")


def test_json_and_table_formats(tmp_path: Path) -> None:
    requests = write_lines(tmp_path / "r.jsonl", [{"id": "r1", "query": QUERY, "documents": DOCS[:2]},
                                                  {"query": "python", "documents": ["a snake"]}])
    as_json = run("batch", "-m", BERT, requests, "-f", "json")
    assert as_json.exit_code == 0 and [a.get("id") for a in json.loads(as_json.stdout)] == ["r1", None]
    table = runner.invoke(app, ["batch", "-m", str(BERT), str(requests), "-f", "table"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "relevance_score" in lines[0] and len(lines) == 5
    assert lines[2].split()[0] == "r1" and lines[4].split()[0] == f"{requests}:2" and "a snake" in lines[4]


@pytest.mark.parametrize(("args", "message"), [
    (["-f", "trec"], "--format trec needs --run"),
    (["--queries", "q.tsv"], "--queries and --corpus go with --run RUN"),
    (["--run", "run.trec", "x.jsonl"], "request FILEs and --run cannot be used together"),
    (["--run", "run.trec"], "--run needs --queries FILE and --corpus FILE"),
])
def test_batch_usage_errors(args: list[str], message: str) -> None:
    result = run("batch", "-m", BERT, *args, stdin="")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"rerank: error: {message}")


# --- rerank rerank --queries ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["text", "jsonl"])
def test_rerank_queries_ranks_each_query_like_one_query_runs(tmp_path: Path, shape: str) -> None:
    docs = write_lines(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": d} for i, d in enumerate(DOCS)])
    queries = [QUERY, "python", ""]
    if shape == "text":
        qfile = tmp_path / "q.txt"
        qfile.write_text("".join(q + "\n" for q in queries))
        ids: list = [0, 1, 2]
    else:
        qfile = write_lines(tmp_path / "q.jsonl", [{"id": f"q{i}", "text": q} for i, q in enumerate(queries)])
        ids = ["q0", "q1", "q2"]
    result = run("rerank", "-m", BERT, "--queries", qfile, docs, "-k", "3", "--return-query", "--quiet")
    assert result.exit_code == 0, result.stderr
    rows = jsonl(result.stdout)
    assert [r["query_id"] for r in rows] == [i for i in ids for _ in range(3)]
    assert list(rows[0]) == ["id", "text", "query_id", "query", "index", "score", "rank"]
    for n, query in enumerate(queries):
        mine = [r for r in rows if r["query_id"] == ids[n]]
        alone = jsonl(run("rerank", "-m", BERT, "-q", query, docs, "-k", "3", "--quiet").stdout)
        assert [(r["id"], r["score"], r["rank"]) for r in mine] == [(r["id"], r["score"], r["rank"]) for r in alone]
        assert all(r["query"] == query for r in mine)


def test_rerank_queries_usage_errors(tmp_path: Path) -> None:
    qfile = tmp_path / "q.txt"
    qfile.write_text("a\n")
    both = run("rerank", "-m", BERT, "-q", "x", "--queries", qfile, stdin="doc\n")
    assert both.exit_code == 2 and "-q/--query and --queries cannot be used together" in both.stderr
    neither = run("rerank", "-m", BERT, stdin="doc\n")
    assert neither.exit_code == 2 and "missing option '-q' / '--query' (or --queries FILE" in neither.stderr
    lone = run("rerank", "-m", BERT, "-q", "x", "--return-query", stdin="doc\n")
    assert lone.exit_code == 2 and "--return-query needs --queries" in lone.stderr
    missing = run("rerank", "-m", BERT, "--queries", tmp_path / "nope.txt", stdin="doc\n")
    assert missing.exit_code == 66 and "nope.txt: no such file" in missing.stderr


def test_rerank_queries_tsv_has_a_query_id_column(tmp_path: Path) -> None:
    qfile = write_lines(tmp_path / "q.jsonl", [{"id": "q1", "text": QUERY}, {"id": "q2", "text": "python"}])
    result = run("rerank", "-m", BERT, "--queries", qfile, "-f", "tsv", "-k", "1", stdin="a\nb\n")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "query_id\tindex\trank\tscore\ttext"
    assert [line.split("\t")[0] for line in lines[1:]] == ["q1", "q2"]


# --- memory ------------------------------------------------------------------------------------------------

_PEAK = """
import resource, subprocess, sys
out = subprocess.run([sys.executable, "-m", "rerank_cli", "batch", "-m", sys.argv[1], sys.argv[2], "--quiet"],
                     stdout=subprocess.PIPE, check=True).stdout
print(out.count(b"\\n"), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_memory_stays_flat_on_10000_requests(tmp_path: Path) -> None:
    # Peak RSS of a real process (a CliRunner run shares the test process's memory): 10,000 requests
    # must cost no more than 2,000 do (fewer leave onnxruntime's arena still growing).
    def requests(n: int) -> Path:
        meta = "m" * 2000  # passes through: cheap to score, but 20 MB if the requests were held
        return write_lines(tmp_path / f"r{n}.jsonl", [
            {"id": i, "query": f"query {i}", "documents": [f"paris {i}", f"doc {i % 7}"], "meta": meta}
            for i in range(n)])

    peaks = {}
    for n in (2000, 10000):
        out = subprocess.run([sys.executable, "-c", _PEAK, str(BERT), str(requests(n))], capture_output=True,
                             text=True, check=True).stdout.split()
        assert int(out[0]) == n
        peaks[n] = int(out[1])  # KiB on Linux
    assert peaks[10000] - peaks[2000] < 8 * 1024, peaks


def test_a_bad_line_leaves_a_closed_json_array() -> None:
    # A stranger's test: `batch -f json` stopped by a bad line left the array open.
    from conftest import BERT as _BERT
    from typer.testing import CliRunner as _Runner

    from rerank_cli.cli.app import app as _app

    result = _Runner().invoke(_app, ["batch", "-m", str(_BERT), "-f", "json"],
                              input='{"id": 1, "query": "q", "documents": ["a"]}\ngarbage\n')
    assert result.exit_code == 65
    assert [a["id"] for a in json.loads(result.stdout)] == [1]
