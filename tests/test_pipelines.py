"""Pipeline behaviour: bad records, skipping, streaming, signals and memory, through the real binary.

Subprocess tests are needed where CliRunner cannot show the behaviour: signals, pipes, a producer
that is still writing, and the child's own peak memory.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from conftest import BERT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.errors import InputError
from rerank_cli.records.readers import InputFormat, read_records

RERANK = [sys.executable, "-m", "rerank_cli"]
PEAK_RSS = Path(__file__).parents[1] / "benchmarks" / "peak_rss.py"
runner = CliRunner()


def big_input(path: Path, lines: int) -> Path:
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"id": i, "text": f"document {i} about paris and the seine"}) + "\n"
                      for i in range(lines))
    return path


# --- readers never crash ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), fmt=st.sampled_from(list(InputFormat)))
def test_any_bytes_give_records_or_a_located_error(tmp_path: Path, data: bytes, fmt: InputFormat) -> None:
    path = tmp_path / "in.data"
    path.write_bytes(data)
    try:
        records = list(read_records([str(path)], fmt))
    except InputError as err:
        assert str(err).startswith(f"{path}:") or str(err).startswith(f"{path}: ")
        return
    assert all(isinstance(r.data, (str, dict)) for r in records)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=8)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=6)
records_strategy = st.lists(st.dictionaries(st.text(max_size=6).filter(lambda k: k not in ("text", "index", "score")
                                                                         and not k.startswith("input_")),
                                            json_values, max_size=4).map(lambda d: {**d, "text": "paris"}),
                            min_size=1, max_size=5)


@settings(max_examples=25, deadline=None)
@given(records=records_strategy)
def test_arbitrary_json_records_round_trip_through_score(records: list[dict]) -> None:
    stdin = "".join(orjson.dumps(r).decode() + "\n" for r in records)
    result = runner.invoke(app, ["score", "-q", "capital", "-m", str(BERT), "--quiet"], input=stdin)
    assert result.exit_code == 0, result.stderr
    # Split on "\n" only: keys may hold U+0085 or U+2028, which str.splitlines() treats as line breaks.
    out = [orjson.loads(line) for line in result.stdout.split("\n") if line]
    assert len(out) == len(records)
    for i, (before, after) in enumerate(zip(records, out)):
        assert {k: v for k, v in after.items() if k not in ("index", "score")} == before
        assert list(after)[: len(before)] == list(before) and after["index"] == i


# --- bad records ----------------------------------------------------------------------------------------

BAD = [
    ("invalid JSON", b'{"text": "ok"}\n{"text": nope}\n{"text": "after"}\n', "in.jsonl:2: invalid JSON"),
    ("missing field", b'{"text": "ok"}\n{"body": "x"}\n{"text": "after"}\n', "in.jsonl:2: no 'text' field"),
    ("non-string", b'{"text": "ok"}\n{"text": ["x"]}\n{"text": "after"}\n', "in.jsonl:2: field 'text' is an array"),
    ("invalid UTF-8", b'{"text": "ok"}\n{"text": "\xc3\x28"}\n{"text": "after"}\n', "in.jsonl:2: invalid UTF-8"),
    ("NUL byte", b'{"text": "ok"}\n{"text": "a\x00b"}\n{"text": "after"}\n', "in.jsonl:2: NUL byte"),
    ("text NUL byte", b"ok\na\x00b\nafter\n", "in.jsonl:2: NUL byte"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_record_stops_with_location_and_complete_lines(tmp_path: Path, name: str, data: bytes,
                                                           message: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    fmt = ["--input-format", "text"] if name.startswith("text") else []
    proc = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path), *fmt], capture_output=True)
    assert proc.returncode == 65
    assert proc.stderr.decode().startswith(f"rerank: error: {tmp_path / message}") and b"Traceback" not in proc.stderr
    for line in proc.stdout.splitlines():
        orjson.loads(line)  # whatever was written is complete JSON


@pytest.mark.parametrize(("name", "data", "message"), BAD, ids=[b[0] for b in BAD])
def test_skip_invalid_reports_each_and_goes_on(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    fmt = ["--input-format", "text"] if name.startswith("text") else []
    proc = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path), "--skip-invalid", *fmt],
                          capture_output=True)
    assert proc.returncode == 0
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["ok", "after"] and [r["index"] for r in rows] == [0, 1]
    err = proc.stderr.decode().splitlines()
    assert err == [f"rerank: warning: skipped {tmp_path / message}" + err[0].split(message, 1)[1],
                   "rerank: warning: skipped 1 invalid record (--skip-invalid)"]


def test_a_50_mb_line_is_truncated_by_tokens_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with open(path, "w") as fh:
        fh.write(json.dumps({"text": "paris " * 9_000_000}) + "\n")  # 54 MB of text on one line
        fh.write(json.dumps({"text": "short"}) + "\n")
    proc = subprocess.Popen([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert len(out.splitlines()) == 2
    assert err.decode().count("warning") == 1 and "1 of 2 pairs were longer than 40 tokens" in err.decode()


def test_unclosed_json_array(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    path.write_text('[{"text": "a"},\n{"text": "b"},\n')
    proc = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path)], capture_output=True)
    assert proc.returncode == 65 and b"open.json:3: invalid JSON" in proc.stderr and proc.stdout == b""


def test_empty_and_whitespace_documents_are_scored(tmp_path: Path) -> None:
    proc = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT), "--input-format", "text"],
                          input=b"\n   \n\t\n", capture_output=True)
    assert proc.returncode == 0 and [orjson.loads(x)["text"] for x in proc.stdout.splitlines()] == ["", "   ", "\t"]
    empty = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT)], input=b"", capture_output=True)
    assert empty.returncode == 0 and empty.stdout == b""


# --- streaming, signals, memory ----------------------------------------------------------------------

def read_line(stream, timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def test_slow_producer_sees_output_before_its_input_ends() -> None:
    proc = subprocess.Popen([*RERANK, "score", "-q", "q", "-m", str(BERT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    proc.stdin.write(b'{"text": "first"}\n{"text": "second"}\n')
    proc.stdin.flush()
    first = read_line(proc.stdout, timeout=30)  # stdin is still open: the window must be released
    assert orjson.loads(first)["text"] == "first"
    proc.stdin.write(b'{"text": "third"}\n')
    proc.stdin.close()
    rest = proc.stdout.read().splitlines()
    assert [orjson.loads(x)["index"] for x in rest] == [1, 2] and proc.wait(timeout=30) == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_stops_fast_with_complete_lines(tmp_path: Path, signum: int, code: int) -> None:
    path = big_input(tmp_path / "big.jsonl", 300_000)
    proc = subprocess.Popen([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout and proc.stderr
    assert read_line(proc.stdout, timeout=60)  # it is running and writing
    sent = time.monotonic()
    proc.send_signal(signum)
    out = proc.stdout.read()
    assert proc.wait(timeout=10) == code
    assert time.monotonic() - sent < 2.0  # "within a second", with slack for a loaded CI machine
    assert out == b"" or out.endswith(b"\n")
    for line in out.splitlines():
        orjson.loads(line)
    assert b"Traceback" not in proc.stderr.read()


def test_memory_stays_flat_on_a_large_input(tmp_path: Path) -> None:
    # The child's own peak RSS (kernel-measured through benchmarks/peak_rss.py, which keeps this test
    # process's memory out of the figure); an input 10x larger must not cost more.
    peaks = []
    for lines in (20_000, 200_000):
        path = big_input(tmp_path / f"in-{lines}.jsonl", lines)
        rss = tmp_path / "rss"
        proc = subprocess.run([sys.executable, str(PEAK_RSS), str(rss), *RERANK, "score", "-q", "q", "-m", str(BERT),
                               str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.returncode == 0, proc.stderr
        peaks.append(int(rss.read_text()) / 1024)
    assert peaks[1] < peaks[0] * 1.25 + 20, peaks
    assert peaks[1] < 200, peaks


def test_top_k_keeps_k_candidates(tmp_path: Path) -> None:
    path = big_input(tmp_path / "in.jsonl", 3000)
    proc = subprocess.run([*RERANK, "rerank", "-q", "paris", "-m", str(BERT), str(path), "-k", "3"],
                          capture_output=True)
    rows = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 0 and [r["rank"] for r in rows] == [1, 2, 3]


def test_progress_bar_only_on_a_terminal_stderr(tmp_path: Path) -> None:
    # A pseudo-terminal on stderr is the only way to see what a person at a terminal sees.
    import pty

    path = big_input(tmp_path / "in.jsonl", 3000)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path)], stdout=subprocess.PIPE,
                            stderr=follower, env={**os.environ, "COLUMNS": "100"})
    os.close(follower)
    out = proc.stdout.read() if proc.stdout else b""
    assert proc.wait(timeout=120) == 0
    seen = b""
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert b"docs/s" in seen and b"scoring" in seen
    assert len(out.splitlines()) == 3000 and b"docs/s" not in out
    quiet = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT), str(path)], capture_output=True)
    assert quiet.stderr == b""  # not a terminal: no progress at all
