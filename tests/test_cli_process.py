"""The real binary in a subprocess: what CliRunner cannot show (pipes, TTY choices, imports, exits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BERT, PAIRS, TOLERANCE, reference_scores

RERANK = [sys.executable, "-m", "rerank_cli"]
HEAVY = ("numpy", "onnxruntime", "tokenizers", "huggingface_hub", "ir_measures", "pytrec_eval", "scipy")


def test_fresh_interpreter_does_not_import_heavy_libraries() -> None:
    # A warm test process would already hold these modules; only a fresh interpreter shows laziness.
    code = f"import rerank_cli.cli.app, sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_runs_without_heavy_imports() -> None:
    # `-X importtime` lists every module the real `--help` imports.
    out = subprocess.run([*RERANK[:1], "-X", "importtime", "-m", "rerank_cli", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: rerank" in out.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported.intersection(HEAVY)


def test_scoring_into_pipes_does_not_load_rich(tmp_path: Path) -> None:
    # No terminal on stderr: no progress bar can be drawn, so rich (~20 ms of imports) stays unloaded.
    docs = tmp_path / "d.txt"
    docs.write_text("a cat purrs\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    out = subprocess.run([*RERANK[:1], "-X", "importtime", "-m", "rerank_cli", "rerank", "-q", "cats", "-m", str(BERT),
                          str(docs)], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["rank"] == 1
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert "onnxruntime" in imported and "rich" not in imported


def test_shell_pipeline_into_another_process(tmp_path: Path) -> None:
    # A real pipe: stdout is not a TTY, so auto format must be JSONL and parse line by line downstream.
    docs = tmp_path / "d.txt"
    docs.write_text("".join(d.replace("\n", " ") + "\n" for q, d in PAIRS[:3]))
    pipeline = f"{' '.join(RERANK)} score -q '{PAIRS[0][0]}' -m '{BERT}' '{docs}' | {sys.executable} -c " \
               "\"import sys, json; [print(json.loads(l)['score']) for l in sys.stdin]\""
    out = subprocess.run(pipeline, shell=True, capture_output=True, text=True, check=True)
    scores = [float(x) for x in out.stdout.split()]
    assert max(abs(a - b) for a, b in zip(scores, reference_scores("tiny-bert")[:3])) < TOLERANCE


def test_stdin_pipe_and_exit_codes(tmp_path: Path) -> None:
    # Exit codes must survive the console-script path, not only CliRunner.
    ok = subprocess.run([*RERANK, "rerank", "-q", "q", "-m", str(BERT), "-k", "1"], input=b'"a"\n"b"\n',
                        capture_output=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["rank"] == 1
    bad = subprocess.run([*RERANK, "score", "-q", "q", "-m", str(BERT)], input=b'{"text": 1}\n', capture_output=True)
    assert bad.returncode == 65 and bad.stderr == b"rerank: error: <stdin>:1: field 'text' is a number, not a string\n"
    missing = subprocess.run([*RERANK, "score", "-q", "q", str(tmp_path / "x.jsonl")], capture_output=True)
    assert missing.returncode == 66


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    # `| head -1` closes the pipe early: no BrokenPipeError traceback, exit 141 like cat or grep.
    docs = tmp_path / "many.txt"
    docs.write_text("".join(f"document {i} about paris\n" for i in range(3000)))
    proc = subprocess.Popen([*RERANK, "score", "-q", "q", "-m", str(BERT), str(docs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert json.loads(first)["index"] == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err and err == b""


def test_no_color_plain_table_when_forced_format(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    out = subprocess.run([*RERANK, "rerank", "-q", "q", "-m", str(BERT), "-f", "table"], input=b"a\nb\n",
                         capture_output=True, env=env)
    assert out.returncode == 0 and b"\x1b[" not in out.stdout and b"rank" in out.stdout


INPUTS = {
    "jsonl": '{"id": 1, "text": "Paris is the capital."}\n"bare string"\n',
    "text": "Paris is the capital.\nbare string\n",
    "json": '[{"id": 1, "text": "Paris is the capital."}, "bare string"]',
}


@pytest.mark.parametrize("out_format", ["jsonl", "json", "tsv", "table"])
@pytest.mark.parametrize("in_format", sorted(INPUTS))
def test_every_input_and_output_format_through_a_pipe(in_format: str, out_format: str) -> None:
    # The real binary reading a pipe and writing to a pipe, for each input x output format.
    proc = subprocess.run([*RERANK, "rerank", "-q", "capital", "-m", str(BERT), "--input-format", in_format,
                           "-f", out_format], input=INPUTS[in_format].encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    if out_format == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    elif out_format == "json":
        rows = json.loads(text)
    elif out_format == "tsv":
        header, *lines = text.splitlines()
        # The id column appears when the first row written has an id (here: when that record ranks first).
        assert header in ("index\trank\tscore\ttext", "index\trank\tscore\tid\ttext")
        if header.endswith("id\ttext"):
            assert in_format in ("jsonl", "json") and lines[0].split("\t")[3] == "1"
        rows = [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]
    else:
        assert "rank" in text and "Paris is the capital." in text and "bare string" in text
        return
    assert sorted(str(r["text"]) for r in rows) == ["Paris is the capital.", "bare string"]
    assert [int(r["rank"]) for r in rows] == [1, 2]


def test_a_stop_signal_behind_a_library_error_keeps_its_exit_code() -> None:
    # onnxruntime turns a Ctrl-C during its import into `ImportError: initialization failed`, chained
    # from the KeyboardInterrupt: that is an interrupted run (130), not a bug with a traceback.
    from rerank_cli.cli.app import _stop_code
    from rerank_cli.errors import Terminated

    def chained(signal: BaseException, implicit: bool) -> ImportError:
        try:
            try:
                raise signal
            except BaseException as exc:
                if implicit:
                    raise ImportError("initialization failed")  # noqa: B904 (as the library does)
                raise ImportError("initialization failed") from exc
        except ImportError as err:
            return err

    assert _stop_code(chained(KeyboardInterrupt(), implicit=False)) == 130
    assert _stop_code(chained(Terminated(), implicit=True)) == 143
    assert _stop_code(chained(ValueError("a bug"), implicit=False)) is None
