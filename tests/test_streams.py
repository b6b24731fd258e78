"""Process-level streams: signals and output errors while stdin is live, closed and full stdio, `| head`,
format detection on a slow pipe, the terminal notice and one-line usage errors.

Most tests here run the real binary: closed descriptors, /dev/full, a pipe that stays open, a
pseudo-terminal on stdin, signals and the interpreter's own exit path cannot be shown by CliRunner.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import BERT
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.engine.batching import prefetch
from rerank_cli.records.readers import read_records
from rerank_cli.records.record import Record, Scored
from rerank_cli.records.writers import OutputFormat, open_writer

RERANK = [sys.executable, "-m", "rerank_cli"]
SCORE = [*RERANK, "score", "-q", "q", "-m", str(BERT)]
FULL = "/dev/full"
needs_dev_full = pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full")
NO_SPACE = b"rerank: error: cannot write output: No space left on device\n"
runner = CliRunner()


def read_line(stream, timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def quoted(argv: list[str]) -> str:
    return " ".join(f"'{a}'" for a in argv)


# --- item 1: a signal or an output error while stdin is a live pipe or a terminal ---------------------

@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_stdin_is_a_live_pipe(signum: int, code: int) -> None:
    # The pipe stays open, so the background reader is blocked inside stdin's read when the signal comes.
    proc = subprocess.Popen(SCORE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(b'{"text": "a"}\n')
    proc.stdin.flush()
    assert json.loads(read_line(proc.stdout, timeout=30))["text"] == "a"
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == code
    err = proc.stderr.read()
    assert b"Fatal Python error" not in err and b"Traceback" not in err
    proc.stdin.close()


@needs_dev_full
def test_output_error_while_stdin_is_a_live_pipe() -> None:
    with open(FULL, "wb") as full:
        proc = subprocess.Popen(SCORE, stdin=subprocess.PIPE, stdout=full, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stderr
    proc.stdin.write(b'{"text": "a"}\n')
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 74  # stdin is still open
    assert proc.stderr.read() == NO_SPACE
    proc.stdin.close()


def test_terminal_stdin_says_it_reads_and_stops_cleanly_on_ctrl_c() -> None:
    # Only a pseudo-terminal on stdin shows what a person typing documents sees.
    leader, follower = pty.openpty()
    proc = subprocess.Popen(SCORE, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(follower)
    assert proc.stdout and proc.stderr
    try:
        notice = read_line(proc.stderr, timeout=30)
        assert notice.startswith(b"rerank: reading documents from stdin") and b"Ctrl-D" in notice
        assert notice.count(b"\n") == 1
        os.write(leader, b"typed document\n")
        assert json.loads(read_line(proc.stdout, timeout=30))["text"] == "typed document"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        err = proc.stderr.read()
        assert b"Fatal Python error" not in err and b"Traceback" not in err
    finally:
        os.close(leader)


def test_terminal_stdin_notice_is_quiet_with_quiet() -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*SCORE, "--quiet"], stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(follower)
    try:
        os.write(leader, b"\x04")  # Ctrl-D at the start of a line: end of input
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(leader)
    assert proc.returncode == 0 and out == b"" and err == b""


def test_a_signal_taken_by_another_thread_still_stops_the_wait() -> None:
    # The kernel may hand a process signal to any thread that does not block it (an onnxruntime
    # thread while the writer holds signals); the main thread, waiting for the reader, must still see it.
    class Stop(Exception):
        pass

    def stop(signum: int, frame: object) -> None:
        raise Stop

    release = threading.Event()

    def slow_input():
        release.wait(20)
        yield "late"

    other = threading.Thread(target=release.wait, args=(20,), daemon=True)
    other.start()
    previous = signal.signal(signal.SIGUSR1, stop)
    timer = threading.Timer(0.3, signal.pthread_kill, (other.ident, signal.SIGUSR1))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(Stop):
            list(prefetch(slow_input()))
        assert time.monotonic() - started < 5
    finally:
        release.set()
        signal.signal(signal.SIGUSR1, previous)


# --- item 4: `| head -1` must give 141, whatever the stream's write returns ----------------------------

class ShortWrites(io.RawIOBase):
    """A raw stream that takes at most `step` bytes per write (as a pipe does when its reader goes away)."""

    def __init__(self, step: int, capacity: int | None = None) -> None:
        self.step, self.capacity, self.data = step, capacity, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        if self.capacity is not None and len(self.data) >= self.capacity:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        n = min(len(b), self.step)
        self.data += bytes(b[:n])
        return n


def rows(n: int) -> list[Scored]:
    return [Scored(Record({"text": f"document {i}"}, "in.jsonl", i + 1), i, 0.5) for i in range(n)]


class TextOver:
    """A stand-in for sys.stdout whose `.buffer` is the given binary stream (as under PYTHONUNBUFFERED)."""

    def __init__(self, buffer: io.RawIOBase) -> None:
        self.buffer = buffer

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("fmt", [OutputFormat.jsonl, OutputFormat.json, OutputFormat.tsv])
def test_short_writes_are_completed(fmt: OutputFormat) -> None:
    raw = ShortWrites(step=7)
    writer = open_writer(fmt, TextOver(raw), ranked=False)  # type: ignore[arg-type]
    writer.write(rows(50))
    writer.close()
    expected = io.BytesIO()
    reference = open_writer(fmt, TextOver(expected), ranked=False)  # type: ignore[arg-type]
    reference.write(rows(50))
    reference.close()
    assert bytes(raw.data) == expected.getvalue()


def test_a_short_write_then_a_closed_pipe_is_a_broken_pipe() -> None:
    writer = open_writer(OutputFormat.jsonl, TextOver(ShortWrites(step=100, capacity=100)), ranked=False)  # type: ignore[arg-type]
    with pytest.raises(BrokenPipeError):
        writer.write(rows(50))


def test_head_gives_141_with_an_unbuffered_stdout(tmp_path: Path) -> None:
    # PYTHONUNBUFFERED (common in containers) makes stdout's binary layer a raw file whose write returns
    # a short count when the reader leaves. rerank writes its whole output (200 kB, more than a pipe
    # holds) at once, so the reader leaves mid-write.
    docs = tmp_path / "many.txt"
    docs.write_text("".join(f"document {i} {'about paris and the seine ' * 10}\n" for i in range(700)))
    proc = subprocess.Popen([*RERANK, "rerank", "-q", "q", "-m", str(BERT), str(docs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout and proc.stderr
    assert json.loads(proc.stdout.readline())["rank"] == 1
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


# --- item 8: auto-detection decides on the first non-blank byte, however late it comes -----------------

class Chunks(io.RawIOBase):
    """A pipe that delivers its bytes in separate reads, as a slow producer does."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        b[:len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize(("chunks", "expected"), [
    ((b"\n", b'{"text": "a", "id": 1}\n'), [({"text": "a", "id": 1}, 2)]),
    ((b"\xef\xbb\xbf", b" \r\n\t", b'"a"\n'), [("a", 2)]),
    ((b"  \n", b"\n", b'[{"text": "a", "id": 1}]'), [({"text": "a", "id": 1}, 0)]),
    ((b"\n", b"\n", b"plain text\n"), [("", 1), ("", 2), ("plain text", 3)]),
    ((b"\n", b" \n"), [("", 1), (" ", 2)]),
])
def test_format_is_decided_on_the_first_non_blank_byte(chunks: tuple[bytes, ...], expected: list) -> None:
    stdin = io.BufferedReader(Chunks(*chunks))
    assert stdin.peek(4096) == chunks[0]  # the first byte that decides has not arrived yet
    got = [(r.data, r.line) for r in read_records([], stdin=stdin)]
    assert got == expected


# --- item 10: closed and full streams: their exit code and one line, for every command ----------------

def run_side_by_side(lines: dict[str, str], stdin: bytes = b"a\nb\n") -> dict[str, tuple[int, bytes]]:
    """Shell command lines (a shell states `>&-` and `> /dev/full` as a user types them), run side by side
    to keep the suite fast: each one's exit code and stderr."""
    procs = {name: subprocess.Popen(["sh", "-c", f"exec {line}"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for name, line in lines.items()}
    results = {}
    for name, proc in procs.items():
        err = proc.communicate(stdin, timeout=60)[1]
        results[name] = (proc.returncode, err)
    return results


COMMANDS = {
    "--version": ["--version"], "--help": ["--help"], "models list": ["models", "list"],
    "models list --json": ["models", "list", "--json"], "score -f table": [*SCORE[3:], "-f", "table"],
    "rerank": ["rerank", "-q", "q", "-m", str(BERT)],
}
CLOSED = b"rerank: error: cannot write output: stdout is closed\n"


@needs_dev_full
def test_full_or_closed_stdout_is_74_with_one_line() -> None:
    lines = {f"{name} > {FULL}": f"{quoted([*RERANK, *args])} > {FULL}" for name, args in COMMANDS.items()}
    lines |= {f"{name} >&-": f"{quoted([*RERANK, *COMMANDS[name]])} >&-" for name in ("--version", "rerank")}
    expected = {name: (74, NO_SPACE if name.endswith(FULL) else CLOSED) for name in lines}
    assert run_side_by_side(lines) == expected


@needs_dev_full
def test_closed_stdin_is_66_and_a_lost_stderr_keeps_the_code(tmp_path: Path) -> None:
    docs, missing = tmp_path / "d.txt", tmp_path / "missing.txt"
    docs.write_text("a\n")
    got = run_side_by_side({
        "<&-": f"{quoted(SCORE)} <&-",
        "0>file": f"{quoted(SCORE)} 0>{tmp_path / 'w.txt'}",
        "FILE <&-": f"{quoted([*SCORE, str(docs)])} <&-",  # stdin is not needed when a file is given
        "2>full": f"{quoted([*SCORE, str(missing)])} 2>{FULL}",
        "2>&-": f"{quoted([*SCORE, str(missing)])} 2>&-",
    })
    assert got == {
        "<&-": (66, b"rerank: error: stdin is closed: give a FILE of documents, or pipe them in\n"),
        "0>file": (66, b"rerank: error: stdin is not open for reading: give a FILE of documents, or pipe them in\n"),
        "FILE <&-": (0, b""), "2>full": (66, b""), "2>&-": (66, b""),
    }


# --- rough edges: one-line usage errors, RERANK_DEBUG ---------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["score", "-m", str(BERT)], "missing option '--query' / '-q'"),
    (["score", "-q", "q", "--batch-size", "x"], "invalid value for '--batch-size'"),
    (["score", "-q", "q", "--bogus"], "no such option: --bogus"),
    (["scor"], "no such command 'scor'"),
    (["score", "-q", "q", "-f", "xml"], "invalid value for '--format'"),
])
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, input="a\n")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"rerank: error: {message}") and result.stderr.count("\n") == 1
    assert "--help" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("value", "traceback"), [("0", False), ("", False), ("no", False), ("1", True),
                                                  ("true", True), ("on", True)])
def test_rerank_debug_counts_only_true_values(tmp_path: Path, value: str, traceback: bool) -> None:
    result = runner.invoke(app, ["score", "-q", "q", "-m", str(BERT), str(tmp_path / "missing.txt")],
                           env={"RERANK_DEBUG": value})
    assert result.exit_code == 66
    assert ("Traceback" in result.stderr) is traceback
    assert result.stderr.endswith("rerank: error: " + str(tmp_path / "missing.txt") + ": no such file\n")


@pytest.mark.parametrize(("args", "code"), [
    (["score", "-q", "q", "-m", str(BERT), "no-such-file"], 66),
    (["score", "-q", "q", "-m", str(BERT), "--bogus"], 2),
    (["score", "-q", "q", "-m", str(BERT), "--variant", "nonexistent"], 69),
    (["score", "-q", "q", "-m", str(BERT), "--max-length", "30"], 0),  # a truncation warning, then success
])
def test_stderr_whose_reader_went_away_keeps_the_exit_code(args: list[str], code: int, tmp_path: Path) -> None:
    # A real process: stderr is a pipe whose reader has gone (`2>&1 | head -1`); rich alone would exit 1.
    docs = tmp_path / "docs.txt"
    docs.write_text("paris " * 200 + "\n")
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "rerank_cli", *args, *([str(docs)] if code == 0 else [])],
                              stdout=subprocess.DEVNULL, stderr=write, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == code


def test_table_to_a_reader_that_went_away_is_141(tmp_path: Path) -> None:
    # A real process: only a real pipe can be closed by its reader (`| head -1`) mid-table.
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"document {i} about paris"}) + "\n" for i in range(3000)))
    proc = subprocess.Popen([sys.executable, "-m", "rerank_cli", "rerank", "-q", "q", "-m", str(BERT), str(docs),
                             "-f", "table"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_while_starting_up_is_130_without_a_traceback() -> None:
    # A real process: a Ctrl-C while the app's libraries are still being imported (a cold start takes
    # tenths of a second). The import of typer is slowed to 2 s here so that the signal lands inside it.
    code = (
        "import builtins, sys, time\n"
        "real = builtins.__import__\n"
        "def slow(name, *args, **kwargs):\n"
        "    if name == 'typer':\n"
        "        time.sleep(2)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow\n"
        "sys.argv = ['rerank', '--version']\n"
        "from rerank_cli.cli import main\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and out == b""
