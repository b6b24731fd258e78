"""Scored records -> table / JSONL / JSON / TSV on stdout. Writers get plain floats, never arrays.

A JSONL record is the input record with our keys added (`index`, `score`, `rank`, and `chunk` for
a document scored by windows); every other field passes through untouched and in order. If the
input already has one of our keys (retrievers often send `score`), its value is kept under
`input_<key>` in the same position: never lost.
"""

from __future__ import annotations

import errno
import re
import select
import signal
from collections.abc import Sequence
from enum import Enum
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..errors import InputError, OutputError, UsageError
from .record import Record, Scored, doc_text, json_text, printable

if TYPE_CHECKING:
    from .requests import Answer

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CAN_MASK = hasattr(signal, "pthread_sigmask")


class OutputFormat(str, Enum):
    """Output formats; auto is a table on a terminal and JSONL when piped."""

    auto = "auto"
    table = "table"
    jsonl = "jsonl"
    json = "json"
    tsv = "tsv"


def output_keys(score_key: str = "score", ranked: bool = False, chunks: bool = False) -> tuple[str, ...]:
    """The keys we add to output records (`chunk` to those scored by windows, with `--long-docs chunk`)."""
    return ("index", score_key, *(("rank",) if ranked else ()), *(("chunk",) if chunks else ()))


# --score-key values that would overwrite a key we write, or the document itself.
_TAKEN = {"index": "the index key", "rank": "the rank key", "input_index": "where an input index is kept",
          "input_rank": "where an input rank is kept", "text": "the text key of plain-text documents"}


def check_score_key(score_key: str, field: str, chunks: bool = False) -> None:
    """Refuse a --score-key that would overwrite one of our keys or the document text."""
    if not score_key:
        raise UsageError("--score-key cannot be empty; name the output key for the score (default: score)")
    taken = "the document text (--field)" if score_key == field else _TAKEN.get(score_key)
    if chunks and score_key in ("chunk", "input_chunk"):
        taken = "the chunk key of --long-docs chunk"
    if taken is not None:
        raise UsageError(f"--score-key {score_key!r} would overwrite {taken}; choose another name")  # repr escapes


def check_id_field(id_field: str | None, score_key: str) -> None:
    """Refuse an --id-field that is empty or would share a column name with index, rank, the score or text."""
    if id_field is None:
        return
    if not id_field:
        raise UsageError("--id-field cannot be empty; name the field to show as the id column (default: id)")
    if id_field in ("index", "rank", "text", score_key):
        raise UsageError(f"--id-field {id_field!r} would share its column name with rerank's own {id_field!r} column "
                         "in table and TSV output; JSONL carries every field")


def check_keys(record: Record, keys: Sequence[str]) -> None:
    """Raise InputError for a record that holds one of our `keys` and its `input_` name too: keeping the
    input value under `input_<key>` would overwrite the other."""
    data = record.data
    if isinstance(data, str):
        return
    for key in keys:
        if key in data and f"input_{key}" in data:
            raise InputError(f"{record.where()}: has both {key!r} and {'input_' + key!r}; "
                             "choose another output key with --score-key")


def output_record(row: Scored, score_key: str = "score", chunks: bool = False) -> dict[str, Any]:
    """The JSON object written for one scored record.

    With `chunks` (--long-docs chunk) an input `chunk` is kept as `input_chunk` whether or not this
    document was split, so `chunk` always means ours.
    """
    ours: dict[str, Any] = {**dict(row.extra), "index": row.index, score_key: row.score}
    if row.rank is not None:
        ours["rank"] = row.rank
    if row.chunk is not None:
        ours["chunk"] = {"index": row.chunk[0], "start": row.chunk[1], "end": row.chunk[2]}
    data = row.record.data
    if isinstance(data, str):
        return {"index": row.index, "text": data, **{k: v for k, v in ours.items() if k != "index"}}
    renamed = [*ours, "chunk"] if chunks else list(ours)
    if any(k in data for k in renamed):
        check_keys(row.record, renamed)
        data = {f"input_{k}" if k in renamed else k: v for k, v in data.items()}
    return {**data, **ours}


class Writer:
    """Base: writes batches of scored rows to a binary stream, flushing each batch."""

    def __init__(self, out: IO[bytes], score_key: str, field: str) -> None:
        self.out, self.score_key, self.field = out, score_key, field
        self.count = 0
        self.chunks = False  # set for --long-docs chunk: an input `chunk` is then kept as `input_chunk`

    def write(self, rows: Sequence[Scored]) -> None:
        """Write one batch of rows and flush, so a consumer sees progress."""
        if rows:
            self._emit(b"".join(self._encode(r) for r in rows))
        self.count += len(rows)

    def close(self) -> None:
        """Finish the document (closing bracket, table) and flush."""
        self.out.flush()

    def _encode(self, row: Scored) -> bytes:
        return orjson.dumps(output_record(row, self.score_key, self.chunks)) + b"\n"

    def _emit(self, data: bytes) -> None:
        emit(self.out, data)


def emit(out: IO[bytes], data: bytes) -> None:
    """Write and flush whole lines; a failure is an output error (74), a reader gone a BrokenPipeError."""
    # Ctrl-C or SIGTERM during a write would leave half a line; hold them until the batch is out.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS) if _CAN_MASK else None
    try:
        write_all(out, data)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise output_error(exc) from exc
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def write_all(out: IO[bytes], data: bytes) -> None:
    """Write every byte of `data`, or raise.

    A raw stream (stdout under PYTHONUNBUFFERED) may take only part of a write, for instance when a
    pipe's reader goes away mid-write; ignoring the count would turn `| head -1` into a silent exit 0
    with the output cut short. The next write then reports the closed pipe.
    """
    view = memoryview(data)
    while view:
        written: int | None = out.write(view)  # type: ignore[arg-type]
        if written is None:  # a non-blocking stream that is full: wait until it takes more
            select.select([], [out], [])
            continue
        if written <= 0:
            raise OutputError("cannot write output: the stream takes no more data")
        view = view[written:]


def output_error(exc: OSError) -> OutputError:
    """The one-line error for output that cannot be written (disk full, closed stdout, I/O error)."""
    if exc.errno == errno.EBADF:
        return OutputError("cannot write output: stdout is closed")
    return OutputError(f"cannot write output: {exc.strerror or exc}")


class JsonWriter(Writer):
    """A JSON array written element by element (valid JSON only once closed)."""

    def write(self, rows: Sequence[Scored]) -> None:
        if rows:
            sep = b",\n" if self.count else b"[\n"
            self._emit(sep + b",\n".join(orjson.dumps(output_record(r, self.score_key, self.chunks))
                                   for r in rows))
        self.count += len(rows)

    def close(self) -> None:
        self._emit(b"\n]\n" if self.count else b"[]\n")


class TsvWriter(Writer):
    """Tab-separated: a header, then index, [rank,] score, [id,] text (backslashes and controls escaped)."""

    def __init__(self, out: IO[bytes], score_key: str, field: str, ranked: bool, id_field: str | None = None) -> None:
        super().__init__(out, score_key, field)
        self.ranked, self.id_field = ranked, id_field
        self.id_key: str | None = None
        self.extra: list[str] = []
        self.started = False

    def write(self, rows: Sequence[Scored]) -> None:
        if rows:
            head = b"" if self.started else self._header(rows[0])
            self._emit(head + b"".join(self._encode(r) for r in rows))
            self.count += len(rows)

    def close(self) -> None:
        if not self.started:
            self._emit(self._header(None))  # empty input still gets its header
        super().close()

    def _header(self, first: Scored | None) -> bytes:
        self.started = True
        self.id_key = id_column(self.id_field, [first] if first else [], self.score_key)
        self.extra = [k for k, _ in first.extra] if first else []
        columns = [*self.extra, "index", *(["rank"] if self.ranked else []), self.score_key,
                   *([self.id_key] if self.id_key else []), "text"]
        return ("\t".join(_tsv_cell(c) for c in columns) + "\n").encode()

    def _encode(self, row: Scored) -> bytes:
        rank = f"{row.rank}\t" if self.ranked else ""
        rid = f"{_tsv_cell(id_value(row, self.id_key))}\t" if self.id_key else ""
        extra = "".join(f"{_tsv_cell(json_text(v))}\t" for _, v in row.extra)
        return (f"{extra}{row.index}\t{rank}{row.score!r}\t{rid}{_tsv_cell(doc_text(row.record, self.field))}\n"
                .encode())


class TableWriter(Writer):
    """A rich table for people at a terminal (scores rounded for display only)."""

    def __init__(self, text_out: IO[str], score_key: str, field: str, ranked: bool,
                 id_field: str | None = None) -> None:
        super().__init__(text_out.buffer, score_key, field)  # type: ignore[attr-defined]
        self.text_out, self.ranked, self.id_field = text_out, ranked, id_field
        self.rows: list[Scored] = []

    def write(self, rows: Sequence[Scored]) -> None:
        self.rows.extend(rows)
        self.count += len(rows)

    def close(self) -> None:
        id_key = id_column(self.id_field, self.rows, self.score_key)
        extra = [k for k, _ in self.rows[0].extra] if self.rows else []  # e.g. query_id, with --queries
        numbers = (["rank"] if self.ranked else []) + ["index", self.score_key]
        headers = extra + numbers + ([id_key] if id_key else []) + ["text"]
        rows = [[json_text(v) for _, v in r.extra] + ([str(r.rank)] if self.ranked else [])
                + [str(r.index), f"{r.score:.4f}"] + ([id_value(r, id_key)] if id_key else [])
                + [doc_text(r.record, self.field)] for r in self.rows]
        if rows:
            print_table(self.text_out, headers, rows, right=len(extra) + len(numbers))
        self.text_out.flush()


def id_column(id_field: str | None, rows: Sequence[Scored], score_key: str = "score") -> str | None:
    """The key shown as the id column: --id-field when given, else `id` when one of `rows` has it (and our
    score is not itself written as `id`)."""
    if id_field is not None:
        return id_field
    has_id = any(isinstance(r.record.data, dict) and "id" in r.record.data for r in rows)
    return "id" if has_id and score_key != "id" else None


def id_value(row: Scored, key: str | None) -> str:
    """A record's id as text (a string as it is, other values as their JSON text); empty when it has none."""
    data = row.record.data
    if key is None or not isinstance(data, dict) or key not in data:
        return ""
    return json_text(data[key])


def print_table(out: IO[str], headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 0) -> None:
    """A rich table whose columns keep their full width except the last, which is cut to fit.

    rich would otherwise shrink every column of a too-wide table, numbers included. The first
    `right` columns are right-aligned (numbers). Cells are shown as text, never as markup or
    emoji codes, and control characters are escaped: documents must not drive the terminal.
    """
    from rich.console import Console
    from rich.table import Table

    headers = [_for_terminal(h) for h in headers]
    rows = [[_for_terminal(cell) for cell in row] for row in rows]
    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 here; a reader that went away is a broken pipe (141) like every format's.
            raise BrokenPipeError

    console = PipeConsole(file=out, highlight=False, markup=False, emoji=False)
    table = Table(show_edge=False, pad_edge=False)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    for i, (header, width) in enumerate(zip(headers, widths)):
        table.add_column(header, justify="right" if i < right else "left", no_wrap=True, min_width=width)
    room = max(10, console.width - sum(widths) - 3 * len(widths))
    table.add_column(headers[-1], overflow="ellipsis", no_wrap=True, max_width=room)
    for row in rows:
        table.add_row(*row)
    console.print(table, markup=False)


_LINE_LAYOUT = re.compile(r"[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines() breaks on


def _for_terminal(cell: str) -> str:
    """One table cell: line breaks and tabs as spaces (a row stays one line), other controls escaped."""
    return printable(_LINE_LAYOUT.sub(" ", cell))


_TSV_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")
_TSV_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _tsv_cell(text: str) -> str:
    r"""Backslash, tab, newline and CR as `\\ \t \n \r`, other control characters as `\xNN` (as PostgreSQL's COPY)."""
    return _TSV_UNSAFE.sub(lambda m: _TSV_NAMED.get(m.group()) or f"\\x{ord(m.group()):02x}", text)


def open_writer(fmt: OutputFormat, stdout: IO[str], *, ranked: bool, score_key: str = "score",
                field: str = "text", id_field: str | None = None) -> Writer:
    """The writer for a format; auto picks a table on a terminal and JSONL otherwise.

    Machine formats write UTF-8 bytes to `stdout.buffer`; the table goes through rich.
    """
    if fmt is OutputFormat.auto:
        fmt = OutputFormat.table if stdout.isatty() else OutputFormat.jsonl
    if fmt is OutputFormat.table:
        return TableWriter(stdout, score_key, field, ranked, id_field)
    out: IO[bytes] = stdout.buffer  # type: ignore[attr-defined]
    if fmt is OutputFormat.tsv:
        return TsvWriter(out, score_key, field, ranked, id_field)
    if fmt is OutputFormat.json:
        return JsonWriter(out, score_key, field)
    return Writer(out, score_key, field)


# --- `rerank batch`: one answer per request ------------------------------------------------------------


class BatchFormat(str, Enum):
    """`rerank batch` output; auto is a table on a terminal and JSONL otherwise (a TREC run with --run)."""

    auto = "auto"
    table = "table"
    jsonl = "jsonl"
    json = "json"
    trec = "trec"


def answer_record(answer: Answer, return_documents: bool = False) -> dict[str, Any]:
    """The request's pass-through keys, then `results`: `{index, [id,] relevance_score, [document]}` best first."""
    request = answer.request
    show = return_documents if request.return_documents is None else request.return_documents
    results = []
    for score, i in answer.ranked:
        result: dict[str, Any] = {"index": i}
        if request.ids is not None:
            result["id"] = request.ids[i]
        result["relevance_score"] = score
        if show:
            result["document"] = request.documents[i]
        results.append(result)
    return {**request.keys, "results": results}


class AnswerWriter:
    """Base: writes answers as JSONL, one line per request, flushing each batch."""

    def __init__(self, out: IO[bytes], return_documents: bool = False) -> None:
        self.out, self.return_documents = out, return_documents
        self.count = 0

    def write(self, answers: Sequence[Answer]) -> None:
        """Write the answers of one window (requests in input order) and flush."""
        if answers:
            self.emit(b"".join(orjson.dumps(answer_record(a, self.return_documents)) + b"\n" for a in answers))
        self.count += len(answers)

    def close(self) -> None:
        """Finish the document (closing bracket, table) and flush."""
        self.out.flush()

    def emit(self, data: bytes) -> None:
        emit(self.out, data)


class JsonAnswerWriter(AnswerWriter):
    """The answers as one JSON array, written element by element."""

    def write(self, answers: Sequence[Answer]) -> None:
        if answers:
            sep = b",\n" if self.count else b"[\n"
            self.emit(sep + b",\n".join(orjson.dumps(answer_record(a, self.return_documents)) for a in answers))
        self.count += len(answers)

    def close(self) -> None:
        self.emit(b"\n]\n" if self.count else b"[]\n")


class TableAnswerWriter(AnswerWriter):
    """A table for people: one row per result, labelled with the request's id (or qid, or FILE:LINE)."""

    def __init__(self, text_out: IO[str]) -> None:
        super().__init__(text_out.buffer)  # type: ignore[attr-defined]
        self.text_out = text_out
        self.rows: list[list[str]] = []

    def write(self, answers: Sequence[Answer]) -> None:
        for answer in answers:
            request = answer.request
            label = next((json_text(request.keys[k]) for k in ("id", "qid") if k in request.keys), request.where)
            for rank, (score, i) in enumerate(answer.ranked, 1):
                doc = request.texts[i] if request.ids is None else f"{request.ids[i]}: {request.texts[i]}"
                self.rows.append([label, str(rank), str(i), f"{score:.4f}", doc])
        self.count += len(answers)

    def close(self) -> None:
        if self.rows:
            print_table(self.text_out, ["request", "rank", "index", "relevance_score", "document"], self.rows,
                        right=0)
        self.text_out.flush()


def open_answer_writer(fmt: BatchFormat, stdout: IO[str], *, return_documents: bool = False,
                       tag: str = "rerank", run: bool = False) -> AnswerWriter:
    """The writer for `rerank batch`; auto picks a TREC run for --run input, else as `open_writer` does."""
    if fmt is BatchFormat.auto:
        fmt = BatchFormat.trec if run else BatchFormat.table if stdout.isatty() else BatchFormat.jsonl
    if fmt is BatchFormat.table:
        return TableAnswerWriter(stdout)
    out: IO[bytes] = stdout.buffer  # type: ignore[attr-defined]
    if fmt is BatchFormat.trec:
        from .trec import TrecWriter  # trec.py builds on this module

        return TrecWriter(out, tag)
    if fmt is BatchFormat.json:
        return JsonAnswerWriter(out, return_documents)
    return AnswerWriter(out, return_documents)
