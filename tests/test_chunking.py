"""--long-docs chunk: long documents scored by their best word-bounded window, on the tiny models (limits 40, 48)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import BERT, FIXTURES, TOLERANCE, XLMR
from typer.testing import CliRunner

from rerank_cli import Reranker
from rerank_cli.cli.app import app
from rerank_cli.engine.chunking import Chunk
from rerank_cli.errors import UsageError

QUERY = "what is the capital of france"
SAMPLE = ("Paris is the capital and most populous city of France, on the Seine. Berlin is the capital of "
         "Germany; the quick brown fox jumps over the lazy dog. Tokyo, Japan's capital, is huge. Rivers "
         "flow to the sea, and state-of-the-art engines run everywhere.")
WORDS = SAMPLE.split()
MODELS = [pytest.param(BERT, id="tiny-bert"), pytest.param(XLMR, id="tiny-xlmr")]
runner = CliRunner()


def prose(words: int, seed: int = 0) -> str:
    """`words` words of the sample sentences in a shuffled order, separated by varied whitespace."""
    rng = np.random.default_rng(seed)
    picked = [WORDS[i] for i in rng.integers(0, len(WORDS), words)]
    gaps = rng.choice([" ", " ", " ", "  ", "\n", " \t "], words - 1)
    return picked[0] + "".join(g + w for g, w in zip(gaps, picked[1:]))


@cache
def engine(path: Path, **options: object) -> Reranker:
    return Reranker(path, **options)  # type: ignore[arg-type]


def scored(ranker: Reranker, query: str, docs: list[str]) -> tuple[list[float], list[Chunk | None]]:
    scores: list[float] = []
    chunks: list[Chunk | None] = []
    for _, s, c in ranker.stream(query, docs, str):
        scores += s
        chunks += c
    return scores, chunks


def windows_of(ranker: Reranker, query: str, doc: str) -> list[Chunk]:
    assert ranker.chunker is not None
    spans = ranker.chunker.plan([(query, doc)]).spans
    return [c for c in spans if c is not None]


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("path", MODELS)
def test_chunk_score_is_the_best_window_scored_alone(path: Path) -> None:
    chunked, whole = engine(path, long_docs="chunk", max_chunks=100), engine(path)
    docs = [prose(n, seed=n) for n in (60, 150, 250)]
    scores, chunks = scored(chunked, QUERY, docs)
    for doc, score, best in zip(docs, scores, chunks):
        windows = windows_of(chunked, QUERY, doc)
        assert len(windows) > 1 and best in windows
        alone = whole.score(QUERY, [doc[w.start:w.end] for w in windows])
        assert whole.truncated == 0  # every window fits with the query: nothing is cut when scored alone
        assert abs(score - alone.max()) < TOLERANCE
        assert abs(score - alone[best.index]) < TOLERANCE and int(np.argmax(alone)) == best.index
    assert chunked.chunked >= 3 and chunked.truncated == 0
    np.testing.assert_allclose(chunked.score(QUERY, docs), scores, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(("model", "activation"), [("tiny-bert-2label", "auto"), ("tiny-bert-2label", "none"),
                                                   ("tiny-bert", "sigmoid")])
def test_best_window_after_the_activation(model: str, activation: str) -> None:
    # Softmax of two labels and sigmoid are monotonic: the max of activated scores is the activated max.
    path = FIXTURES / model
    chunked = engine(path, long_docs="chunk", activation=activation)
    whole = engine(path, activation=activation)
    doc = prose(200, seed=7)
    (score,), (best,) = scored(chunked, QUERY, [doc])
    alone = whole.score(QUERY, [doc[w.start:w.end] for w in windows_of(chunked, QUERY, doc)])
    assert best is not None and abs(score - alone.max()) < TOLERANCE and abs(score - alone[best.index]) < TOLERANCE


@pytest.mark.parametrize("path", MODELS)
def test_documents_that_fit_score_as_with_truncate(path: Path) -> None:
    fits = ["Paris is the capital of France.", "", "  \n\t ", "berlin", prose(6)]
    chunked, whole = engine(path, long_docs="chunk"), engine(path)
    scores, chunks = scored(chunked, QUERY, fits)
    assert chunks == [None] * len(fits)
    np.testing.assert_array_equal(np.float32(scores), whole.score(QUERY, fits))
    # Among long documents, in the same batches as their windows, they keep their scores too.
    mixed, chunks = scored(chunked, QUERY, [prose(300), *fits])
    assert chunks[0] is not None and chunks[1:] == [None] * len(fits)
    np.testing.assert_allclose(mixed[1:], whole.score(QUERY, fits), atol=1e-6, rtol=0)


@pytest.mark.parametrize("path", MODELS)
def test_windows_start_and_end_between_words(path: Path) -> None:
    ranker = engine(path, long_docs="chunk", max_chunks=100)
    for seed in range(3):
        doc = prose(250, seed=seed)
        windows = windows_of(ranker, QUERY, doc)
        assert windows[0].start == 0 and windows[-1].end == len(doc)
        for w in windows:
            text = doc[w.start:w.end]
            assert text == text.strip() and text
            assert w.start == 0 or doc[w.start - 1].isspace(), doc[w.start - 5:w.start + 5]
            assert w.end == len(doc) or doc[w.end].isspace(), doc[w.end - 5:w.end + 5]
        assert [w.index for w in windows] == list(range(len(windows)))


def fills_the_room(tokens, doc: str, window: Chunk, room: int) -> bool:
    """Whether the window holds at most `room` tokens and the next word would not fit."""
    if len(tokens(doc[window.start:window.end])) > room:
        return False
    after = doc[window.end:].lstrip()
    if not after:
        return True
    following = len(doc) - len(after) + (len(after.split(maxsplit=1)[0]))
    return len(tokens(doc[window.start:following])) > room


@pytest.mark.parametrize("path", MODELS)
@pytest.mark.parametrize("overlap", [0, 5, 12])
def test_consecutive_windows_share_the_overlap_and_fill_the_room(path: Path, overlap: int) -> None:
    ranker = engine(path, long_docs="chunk", chunk_overlap=overlap, max_chunks=100)
    assert ranker.chunker is not None
    tokenizer = ranker.chunker.tokenizer

    def tokens(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    doc = prose(300, seed=overlap)
    windows = windows_of(ranker, QUERY, doc)
    room = ranker.max_length - ranker.chunker.specials - len(tokens(QUERY))
    shared = [len(tokens(doc[nxt.start:prev.end])) if nxt.start < prev.end else 0
              for prev, nxt in zip(windows, windows[1:])]
    assert all(a.start < b.start and a.end < b.end for a, b in zip(windows, windows[1:]))
    if overlap == 0:
        assert shared == [0] * len(shared)
    else:
        # At least the overlap, back to a word start; a little less only where starting further back
        # would leave the next window no whitespace to end at (XLM-R's words run to many tokens here).
        assert all(0 < n <= overlap + room // 2 for n in shared)
        assert sum(n >= overlap for n in shared) >= 0.9 * len(shared), shared
    assert all(fills_the_room(tokens, doc, w, room) for w in windows)


def test_max_chunks_bounds_the_windows_and_the_warning_counts_both(tmp_path: Path) -> None:
    long_doc, short = prose(400), "Paris is the capital of France."
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate([long_doc, short])))
    result = run("score", "-q", QUERY, "-m", BERT, path, "--long-docs", "chunk", "--max-chunks", "2")
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["chunk"]["index"] in (0, 1) and "chunk" not in rows[1]
    assert result.stderr == ("rerank: warning: 1 of 2 documents were truncated (text past --max-chunks 2 windows, "
                             "or a query longer than half the 40-token limit); 1 of 2 were scored by their best "
                             "window (--quiet hides this)\n")
    # Chunking with nothing left unscored is what was asked for: no warning.
    assert run("score", "-q", QUERY, "-m", BERT, path, "--long-docs", "chunk", "--max-chunks", "100").stderr == ""
    ranker = engine(BERT, long_docs="chunk", max_chunks=2)
    windows = windows_of(ranker, QUERY, long_doc)
    assert len(windows) == 2 and windows[-1].end < len(long_doc) // 4
    # All 16 (the default) windows are read, even from a document far longer than 64 characters a token,
    # made of words far apart: the pre-cut keeps what the windows need.
    spread = (" " * 300).join(prose(600).split())
    windows = windows_of(engine(BERT, long_docs="chunk"), QUERY, spread)
    assert len(windows) == 16 and all(spread[w.start:w.end].strip() == spread[w.start:w.end] for w in windows)
    assert windows[-1].end < len(spread)


@pytest.mark.parametrize("path", MODELS)
def test_chunk_key_in_jsonl_gives_the_best_window(path: Path, tmp_path: Path) -> None:
    docs = [prose(120, seed=1), "Paris is the capital of France.", prose(200, seed=2)]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t, "chunk": "theirs"}) + "\n" for i, t in enumerate(docs)))
    out = run("rerank", "-q", QUERY, "-m", path, source, "--long-docs", "chunk", "--quiet")
    assert out.exit_code == 0 and out.stderr == ""
    rows = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["id"] for r in rows) == [0, 1, 2] and [r["rank"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["input_chunk"] == "theirs" and list(row)[:4] == ["id", "text", "input_chunk", "index"]
        text = docs[row["id"]]
        if row["id"] == 1:
            assert "chunk" not in row
            continue
        assert list(row["chunk"]) == ["index", "start", "end"] and list(row)[-1] == "chunk"
        window = text[row["chunk"]["start"]:row["chunk"]["end"]]
        alone = runner.invoke(app, ["score", "-q", QUERY, "-m", str(path), "--quiet"],
                              input=json.dumps({"text": window}) + "\n")
        assert abs(orjson.loads(alone.stdout)["score"] - row["score"]) < TOLERANCE
    # A record that has both keys cannot keep its own `chunk` as `input_chunk`: a located bad record.
    both = tmp_path / "both.jsonl"
    both.write_text(source.read_text() + json.dumps({"text": "x", "chunk": 1, "input_chunk": 2}) + "\n")
    bad = run("score", "-q", QUERY, "-m", path, both, "--long-docs", "chunk", "--quiet")
    assert bad.exit_code == 65 and f"{both}:4: has both 'chunk' and 'input_chunk'" in bad.stderr
    assert len(bad.stdout.splitlines()) == 3
    # Without --long-docs chunk, an input `chunk` passes through untouched.
    plain = run("score", "-q", QUERY, "-m", path, source, "--quiet")
    assert [orjson.loads(line)["chunk"] for line in plain.stdout.splitlines()] == ["theirs"] * 3


@pytest.mark.parametrize("path", MODELS)
def test_a_long_query_leaves_the_document_half_the_room(path: Path) -> None:
    chunked, whole = engine(path, long_docs="chunk", max_chunks=100), engine(path)
    assert chunked.chunker is not None
    query = prose(80, seed=3)  # alone longer than the limit
    doc = prose(150, seed=4)
    before = chunked.truncated
    (score,), (best,) = scored(chunked, query, [doc])
    assert chunked.truncated == before + 1  # the query was cut: the document counts as truncated
    windows = windows_of(chunked, query, doc)
    half = (chunked.max_length - chunked.chunker.specials) // 2
    tokenizer = chunked.chunker.tokenizer
    assert all(fills_the_room(lambda t: tokenizer.encode(t, add_special_tokens=False).ids, doc, w, half)
               for w in windows)
    alone = whole.score(query, [doc[w.start:w.end] for w in windows])
    assert best is not None and abs(score - alone.max()) < TOLERANCE and abs(score - alone[best.index]) < TOLERANCE
    # A short document with that query is scored as truncate scores it.
    short = "Paris is the capital of France."
    assert np.float32(scored(chunked, query, [short])[0][0]) == whole.score(query, [short])[0]


@pytest.mark.parametrize(("path", "word"), [(XLMR, "abcdefghijklmnopqrstuvwxyz" * 3), (BERT, "-" * 100)],
                         ids=["one-long-word", "punctuation-run"])
def test_text_without_whitespace_is_cut_between_words_then_tokens(path: Path, word: str) -> None:
    # XLM-R makes one word of 69 tokens (more than a window): it is cut between tokens. BERT makes each
    # dash a word of its own: windows are cut between those words.
    chunked, whole = engine(path, long_docs="chunk", max_chunks=100), engine(path)
    doc = f"Paris is the capital {word} of France"
    (score,), (best,) = scored(chunked, QUERY, [doc])
    windows = windows_of(chunked, QUERY, doc)
    assert best is not None and len(windows) > 2 and windows[-1].end == len(doc)
    alone = whole.score(QUERY, [doc[w.start:w.end] for w in windows])
    assert abs(score - alone.max()) < TOLERANCE and abs(score - alone[best.index]) < TOLERANCE


@pytest.mark.parametrize("model", ["tiny-modernbert", "tiny-deberta"])
def test_other_tokenizer_families_cut_between_words_too(model: str) -> None:
    # Byte-level BPE counts the space before a word into its first token, and so does this SentencePiece
    # file: spans skip it, and windows stay short enough to fit once they lose it.
    chunked = engine(FIXTURES / model, long_docs="chunk", max_length=48, max_chunks=100)
    whole = engine(FIXTURES / model, max_length=48)
    doc = prose(120, seed=5)
    (score,), (best,) = scored(chunked, QUERY, [doc])
    windows = windows_of(chunked, QUERY, doc)
    for w in windows:
        assert (w.start == 0 or doc[w.start - 1].isspace()) and (w.end == len(doc) or doc[w.end].isspace())
    alone = whole.score(QUERY, [doc[w.start:w.end] for w in windows])
    assert best is not None and abs(score - alone.max()) < TOLERANCE and abs(score - alone[best.index]) < TOLERANCE
    assert chunked.truncated == 0 and whole.truncated == 0


def test_a_huge_whitespace_document_is_read_as_truncate_reads_it() -> None:
    chunked, whole = engine(BERT, long_docs="chunk"), engine(BERT)
    docs = [" " * 3_000_000, " " * 3_000_000 + "Paris"]
    scores, chunks = scored(chunked, QUERY, docs)
    assert chunks == [None, None]
    np.testing.assert_array_equal(np.float32(scores), whole.score(QUERY, docs))


def test_python_api_options_are_checked() -> None:
    with pytest.raises(UsageError, match="long_docs 'split' is not one of 'truncate', 'chunk'"):
        Reranker(BERT, long_docs="split")
    with pytest.raises(UsageError, match="max_chunks=0 is too small"):
        Reranker(BERT, long_docs="chunk", max_chunks=0)
    with pytest.raises(UsageError, match="chunk_overlap=-1 is too small"):
        Reranker(BERT, long_docs="chunk", chunk_overlap=-1)
    with pytest.raises(UsageError, match="max_chunks apply only with long_docs='chunk'"):
        Reranker.from_dir(BERT, max_chunks=3)
    with pytest.raises(TypeError, match="chunk_overlap must be an int"):
        Reranker(BERT, long_docs="chunk", chunk_overlap="8")
    result = run("score", "-q", QUERY, "-m", BERT, "--max-chunks", "3", "-")
    assert result.exit_code == 2
    assert result.stderr == "rerank: error: --chunk-overlap and --max-chunks apply only with --long-docs chunk\n"
    result = run("rerank", "-q", QUERY, "-m", BERT, "--long-docs", "chunk", "--score-key", "chunk", "-")
    assert result.exit_code == 2 and "would overwrite the chunk key of --long-docs chunk" in result.stderr
    ranker = engine(BERT, long_docs="chunk")
    docs = ["berlin", prose(200, seed=9), "Paris is the capital of France."]
    ranked = ranker.rerank(QUERY, docs)
    expected = ranker.score(QUERY, docs)
    assert [i for i, _ in ranked] == [int(i) for i in np.argsort(-expected, kind="stable")]
    assert ranker.score_pairs([(QUERY, d) for d in docs]).tolist() == expected.tolist()


def test_the_chunking_benchmark_runs() -> None:
    # A subprocess, as users run it: its --quick mode on tiny-bert, 8 documents per size.
    out = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "benchmarks/chunking.py"), "--quick"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "x (" in line]
    assert [r.split(" |")[0] for r in rows] == ["| 1x (40 tokens)", "| 4x (160 tokens)", "| 16x (640 tokens)"]
    windows = [float(r.split("|")[2]) for r in rows]
    assert all(len(r.split("|")) == 10 for r in rows)
    assert 1 < windows[0] < windows[1] < windows[2]


def test_batch_scores_long_documents_by_windows_as_score_does() -> None:
    import json as _json

    from typer.testing import CliRunner as _Runner

    from rerank_cli.cli.app import app as _app

    long_doc = " ".join(["Paris is the capital of France and a big city on the Seine."] * 30)
    docs = [long_doc, "short"]
    request = _json.dumps({"query": "capital of france", "documents": docs}) + "\n"
    runner = _Runner()
    answer = runner.invoke(_app, ["batch", "-m", str(BERT), "--long-docs", "chunk", "--quiet"], input=request)
    scored = runner.invoke(_app, ["score", "-q", "capital of france", "-m", str(BERT), "--long-docs", "chunk",
                                  "--quiet", "--input-format", "text"], input="\n".join(docs) + "\n")
    assert answer.exit_code == 0 and scored.exit_code == 0, answer.stderr + scored.stderr
    by_index = {r["index"]: r["relevance_score"] for r in _json.loads(answer.stdout)["results"]}
    assert [by_index[0], by_index[1]] == [_json.loads(line)["score"] for line in scored.stdout.splitlines()]
    wrong = runner.invoke(_app, ["batch", "-m", str(BERT), "--max-chunks", "3"], input=request)
    assert wrong.exit_code == 2
