"""Relevance judgments (qrels) and TREC runs -> plain dicts, for `rerank eval`.

Qrels come in TREC form (`qid iter docid rel`, whitespace-separated) or BEIR form (a TSV with the
header `query-id corpus-id score`; the header may be left out). Runs are TREC runs: `qid Q0 docid rank
score tag`, what `rerank batch --format trec` writes. As in trec_eval, a run's order comes from its
scores; the rank column is read but not used. A bad line is an InputError naming FILE:LINE (exit 65).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import IO

from ..errors import InputError, NoInputError
from .readers import STDIN, check_sources

Qrels = dict[str, dict[str, int]]
"""query id -> document id -> relevance grade (0 is judged not relevant; negative grades are allowed)."""
Run = dict[str, dict[str, float]]
"""query id -> document id -> score (higher is better)."""

BEIR_HEADER = ("query-id", "corpus-id", "score")


def read_qrels(path: str, stdin: IO[bytes] | None = None) -> Qrels:
    """Read TREC or BEIR qrels; the form is decided by the first line (4 columns: TREC, 3 or the header: BEIR)."""
    qrels: Qrels = {}
    columns = 0
    lines = _lines(path, stdin)
    path = source_name(path)
    for lineno, line in lines:
        if columns == 0:
            fields = line.split("\t") if "\t" in line else line.split()
            if tuple(f.strip() for f in fields) == BEIR_HEADER:
                columns = 3
                continue
            columns = len(fields)
            if columns not in (3, 4):
                raise InputError(f"{path}:{lineno}: expected 4 columns (qid iter docid rel) or 3 (query-id "
                                 f"corpus-id score, BEIR), found {columns}")
        fields = _fields(line, columns == 3)
        if len(fields) != columns:
            form = "qid iter docid rel" if columns == 4 else "query-id corpus-id score"
            raise InputError(f"{path}:{lineno}: expected {columns} columns ({form}), found {len(fields)}")
        qid, docid, grade = fields[0], fields[-2], fields[-1]
        try:
            rel = int(grade)
        except ValueError:
            raise InputError(f"{path}:{lineno}: relevance {grade!r} is not an integer") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise InputError(f"{path}:{lineno}: document {docid!r} is judged twice for query {qid!r}")
        judged[docid] = rel
    if not qrels:
        raise InputError(f"{path}: no judgments in the file")
    return qrels


def read_run(path: str, stdin: IO[bytes] | None = None) -> Run:
    """Read a TREC run (`qid Q0 docid rank score tag`); a document listed twice for one query is an error."""
    run: Run = {}
    lines = _lines(path, stdin)
    path = source_name(path)
    for lineno, line in lines:
        try:
            qid, docid, score = parse_run_line(line)
            if math.isnan(score):
                raise ValueError("score is NaN")
        except ValueError as exc:
            reason = str(exc)
            if line.startswith("{"):  # rerank's own JSONL output, given where its TREC form belongs
                reason = ("a JSON line, not a TREC run line (qid Q0 docid rank score tag); "
                          "`rerank batch --format trec` writes runs")
            raise InputError(f"{path}:{lineno}: {reason}") from None
        ranked = run.setdefault(qid, {})
        if docid in ranked:
            raise InputError(f"{path}:{lineno}: document {docid!r} is listed twice for query {qid!r}")
        ranked[docid] = score
    return run


def parse_run_line(line: str) -> tuple[str, str, float]:
    """(qid, docid, score) of a TREC run line (`qid Q0 docid rank score tag`), or ValueError saying what is
    wrong with it. The one parser of run lines: `rerank eval` and `rerank batch --run` both use it."""
    fields = line.split()
    if len(fields) != 6:
        raise ValueError(f"expected 6 columns (qid Q0 docid rank score tag), found {len(fields)}")
    try:
        score = float(fields[4])
    except ValueError:
        raise ValueError(f"score {fields[4]!r} is not a number") from None
    return fields[0], fields[2], score


def check_file(path: str) -> None:
    """Raise NoInputError (66) for a path that is missing, a directory or unreadable."""
    check_sources([path], kind="a file", closed="stdin is closed: give a run FILE, or pipe one in")


def source_name(path: str) -> str:
    """How errors name an input: its path, or `<stdin>` for `-`."""
    return "<stdin>" if path == STDIN else path


def _fields(line: str, tsv: bool) -> list[str]:
    # BEIR ids may hold spaces, so a BEIR line with tabs splits on tabs only.
    return line.split("\t") if tsv and "\t" in line else line.split()


def _lines(path: str, stdin: IO[bytes] | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) for every non-blank line, decoded as UTF-8; bad bytes are a located InputError.

    `-` reads `stdin`, else the process's stdin.
    """
    source = source_name(path)
    check_file(path)
    try:
        fh = (stdin or sys.stdin.buffer) if path == STDIN else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise NoInputError(f"{path}: cannot open ({exc.strerror})") from exc
    try:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise InputError(f"{source}:{lineno}: invalid UTF-8 at byte {exc.start}") from None
            if line:
                yield lineno, line
    except OSError as exc:
        raise NoInputError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    finally:
        if path != STDIN:
            fh.close()
