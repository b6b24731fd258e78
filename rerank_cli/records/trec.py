"""TREC runs, queries and corpora in; TREC runs out. The IR research shape of `rerank batch`.

A run is `qid Q0 docid rank score tag` per line (whitespace-separated); tools order it by score, not
by the rank column, and so do we. Queries are TSV `qid<TAB>text` (MS MARCO) or BEIR JSONL (`_id`,
`text`); a corpus is BEIR JSONL (`_id`, `title`, `text`: the document is `(title + " " + text).strip()`,
as BEIR's reranker scores it) or TSV `docid<TAB>text`. The corpus is read in one streaming pass and
only the documents the run names are kept, so it may be far larger than memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..errors import InputError, NoInputError
from .qrels import parse_run_line
from .readers import check_sources
from .record import OnInvalid, json_kind, report_invalid
from .requests import Answer, Request
from .writers import AnswerWriter


@dataclass
class Run:
    """A run's documents per query (first-seen query order), each query's best `depth` by the run's score."""

    path: str
    docs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # qid -> [(docid, where)]
    first_line: dict[str, str] = field(default_factory=dict)  # qid -> where it first appears
    duplicates: list[str] = field(default_factory=list)  # where each ignored repeat of (qid, docid) is


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline) of a UTF-8 file; a bad byte is a located InputError."""
    check_sources([path])
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the generator ends
    except OSError as exc:
        raise NoInputError(f"{path}: cannot open ({exc.strerror})") from exc
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{lineno}: invalid UTF-8 at byte {exc.start}") from exc


def _guarded(on_invalid: OnInvalid, check: Callable[..., Any], *args: Any) -> Any:
    """`check(*args)`, or None after handing its InputError to `on_invalid` (--skip-invalid)."""
    try:
        return check(*args)
    except InputError as err:
        report_invalid(on_invalid, err)
        return None


def read_run(path: str, depth: int, on_invalid: OnInvalid = None) -> Run:
    """Read a TREC run, keeping each query's `depth` best documents by score (ties as trec_eval orders them).

    A repeated (qid, docid) line is ignored, the first one kept, and recorded in `duplicates`.
    """
    run = Run(path)
    scored: dict[str, list[tuple[float, int, str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        row = _guarded(on_invalid, _run_line, line, where)
        if row is None:
            continue
        qid, docid, score = row
        if (qid, docid) in seen:
            run.duplicates.append(where)
            continue
        seen.add((qid, docid))
        run.first_line.setdefault(qid, where)
        entries = scored.setdefault(qid, [])
        entries.append((score, len(entries), docid, where))
    for qid, entries in scored.items():
        # trec_eval's order, which evaluation tools use: score descending, equal scores by docid descending
        # (two stable sorts); NaN scores last.
        entries.sort(key=lambda e: e[2], reverse=True)
        entries.sort(key=lambda e: (math.isnan(e[0]), -e[0] if not math.isnan(e[0]) else 0.0))
        run.docs[qid] = [(docid, where) for _, _, docid, where in entries[:depth]]
    return run


def _run_line(line: str, where: str) -> tuple[str, str, float]:
    try:
        return parse_run_line(line)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def _is_jsonl(path: str) -> bool:
    """BEIR JSONL or TSV: by extension, else by the first non-blank character (`{` for JSONL)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json", ".ndjson"):
        return True
    if ext in (".tsv", ".txt"):
        return False
    for _, line in _lines(path):
        if line.strip():
            return line.lstrip().startswith("{")
    return False


def _jsonl_item(line: str, where: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object (a BEIR {what}), got {json_kind(value)}")
    if "_id" not in value:
        raise InputError(f"{where}: no '_id' in the {what}")
    if isinstance(value["_id"], bool) or not isinstance(value["_id"], (str, int)):
        raise InputError(f"{where}: '_id' is {json_kind(value['_id'])}, not a string")
    return value


def _string(value: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    text = value.get(key, default)
    if text is None and default is not None:  # BEIR exports carry `"title": null` for untitled documents
        text = default
    if text is None:
        raise InputError(f"{where}: no {key!r} field")
    if not isinstance(text, str):
        raise InputError(f"{where}: {key!r} is {json_kind(text)}, not a string")
    return text


def _tsv_item(line: str, where: str, what: str) -> tuple[str, str]:
    key, tab, text = line.partition("\t")
    if not tab:
        raise InputError(f"{where}: expected `{what}id<TAB>text` (no tab in the line)")
    return key.strip(), text


def read_texts(path: str, wanted: set[str], *, corpus: bool, on_invalid: OnInvalid = None) -> dict[str, str]:
    """id -> text for the ids in `wanted` (queries, or a corpus's documents), in one streaming pass.

    The first line with an id wins; later ones are ignored. Lines of other ids are checked too.
    """
    found: dict[str, str] = {}
    jsonl = _is_jsonl(path)
    what = "document" if corpus else "query"
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        item = _guarded(on_invalid, _text_item, line, where, what, jsonl, corpus)
        if item is not None and item[0] in wanted and item[0] not in found:
            found[item[0]] = item[1]
    return found


def _text_item(line: str, where: str, what: str, jsonl: bool, corpus: bool) -> tuple[str, str]:
    if not jsonl:
        return _tsv_item(line, where, "doc" if corpus else "q")
    value = _jsonl_item(line, where, what)
    text = _string(value, "text", where)
    if corpus:
        text = (_string(value, "title", where, "") + " " + text).strip()
    return str(value["_id"]), text


def run_requests(run: Run, queries_path: str, corpus_path: str, on_invalid: OnInvalid = None) -> list[Request]:
    """One request per query of the run (in run order): its text and its documents' texts.

    A query or document the files lack is an InputError at the run line that names it, or (with
    `on_invalid`) that query or document is left out.
    """
    queries = read_texts(queries_path, set(run.docs), corpus=False, on_invalid=on_invalid)
    wanted = {docid for docs in run.docs.values() for docid, _ in docs}
    corpus = read_texts(corpus_path, wanted, corpus=True, on_invalid=on_invalid)
    requests = []
    for qid, docs in run.docs.items():
        if qid not in queries:
            report_invalid(on_invalid, InputError(f"{run.first_line[qid]}: query {qid!r} is not in {queries_path}"))
            continue
        kept = []
        for docid, where in docs:
            if docid in corpus:
                kept.append(docid)
            else:
                report_invalid(on_invalid, InputError(f"{where}: document {docid!r} is not in {corpus_path}"))
        texts = [corpus[d] for d in kept]
        requests.append(Request(queries[qid], texts, texts, {"qid": qid}, run.first_line[qid], ids=kept))
    return requests


class TrecWriter(AnswerWriter):
    """A TREC run: `qid Q0 docid rank score tag`, ranks 1..n, scores descending, for trec_eval, ir_measures, ranx."""

    def __init__(self, out: IO[bytes], tag: str) -> None:
        super().__init__(out)
        self.tag = tag

    def write(self, answers: Sequence[Answer]) -> None:
        lines: list[str] = []
        for answer in answers:
            request = answer.request
            qid = request.keys.get("qid", request.where)
            ids = request.ids or [str(i) for i in range(len(request.texts))]
            lines.extend(f"{qid} Q0 {ids[i]} {rank} {score!r} {self.tag}\n"
                         for rank, (score, i) in enumerate(answer.ranked, 1))
        if lines:
            self.emit("".join(lines).encode())
        self.count += len(answers)
