"""Files and stdin -> record iterators: JSONL, plain text (one document per line) or a JSON array.

Readers know nothing about models: they yield `Record`s that remember where they came from, so
that every later error can say `FILE:LINE: what is wrong`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import IO, Any

import orjson

from ..errors import InputError, NoInputError
from .record import OnInvalid, Record, json_kind, report_invalid

STDIN = "-"


class InputFormat(str, Enum):
    """How input files are parsed; auto decides by extension, then by the first byte."""

    auto = "auto"
    jsonl = "jsonl"
    text = "text"
    json = "json"


_EXTENSIONS = {
    ".jsonl": InputFormat.jsonl, ".ndjson": InputFormat.jsonl, ".jsonlines": InputFormat.jsonl,
    ".json": InputFormat.json, ".txt": InputFormat.text, ".text": InputFormat.text,
}


CLOSED_STDIN = "stdin is closed: give a FILE of documents, or pipe them in"
UNREADABLE_STDIN = "stdin is not open for reading: give a FILE of documents, or pipe them in"


def check_sources(paths: Sequence[str], stdin: IO[bytes] | None = None, *, kind: str = "a file of documents",
                  closed: str = CLOSED_STDIN) -> list[str]:
    """Return the inputs to read (stdin when none), failing before any output if one cannot be read.

    `stdin` stands in for the process's stdin (tests, library callers); without it, a stdin that the
    caller closed (`rerank score ... <&-`) is a missing input (66), not a crash on first read. `kind`
    and `closed` word the messages for other inputs (runs, qrels).
    """
    paths = list(paths) or [STDIN]
    for path in paths:
        if path == STDIN:
            if stdin is None and sys.stdin is None:
                raise NoInputError(closed)
            continue
        if not os.path.exists(path):
            raise NoInputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise NoInputError(f"{path}: is a directory, not {kind}")
        if not os.access(path, os.R_OK):
            raise NoInputError(f"{path}: permission denied")
    return paths


def read_records(paths: Sequence[str], fmt: InputFormat = InputFormat.auto,
                 stdin: IO[bytes] | None = None, on_invalid: OnInvalid = None) -> Iterator[Record]:
    """Yield the records of every input in order; `-` reads stdin (the default when no path is given).

    A bad line raises InputError naming FILE:LINE, unless `on_invalid` is given: then it is
    reported to that callback and skipped (`--skip-invalid`). A read that fails (an I/O error, a
    stdin opened for writing only) raises NoInputError naming the input.
    """
    for path in check_sources(paths, stdin):
        source = "<stdin>" if path == STDIN else path
        try:
            if path == STDIN:
                stream = stdin or sys.stdin.buffer
                if not hasattr(stream, "peek"):  # e.g. a BytesIO standing in for stdin
                    stream = io.BufferedReader(stream)  # type: ignore[arg-type]
                yield from _read_stream(stream, source, fmt, on_invalid)
                continue
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the generator ends
            except OSError as exc:
                raise NoInputError(f"{path}: cannot open ({exc.strerror})") from exc
            with fh:
                yield from _read_stream(fh, path, _by_extension(path, fmt), on_invalid)
        except OSError as exc:  # raised by a read: the records before it have been yielded
            if path == STDIN and exc.errno == errno.EBADF:  # `0>file`: a stdin open for writing only
                raise NoInputError(UNREADABLE_STDIN) from exc
            raise NoInputError(f"{source}: cannot read ({exc.strerror or exc})") from exc


def total_bytes(paths: Sequence[str]) -> int | None:
    """The size of all inputs when every one is a regular file (for a progress bar's ETA), else None."""
    paths = list(paths) or [STDIN]
    if any(p == STDIN or not os.path.isfile(p) for p in paths):
        return None
    return sum(os.path.getsize(p) for p in paths)


def _by_extension(path: str, fmt: InputFormat) -> InputFormat:
    if fmt is not InputFormat.auto:
        return fmt
    found = _EXTENSIONS.get(os.path.splitext(path)[1].lower(), InputFormat.auto)
    # A `.json` file is often JSONL in disguise: let its first byte decide between the two.
    return InputFormat.auto if found is InputFormat.json else found


_BLANK = b"\xef\xbb\xbf \t\r\n"  # what may come before the byte that decides (a BOM, whitespace)


def _sniff(fh: IO[bytes]) -> tuple[InputFormat, IO[bytes]]:
    """Decide the format from the first non-blank byte, however long it takes to arrive.

    Returns the format and a stream that still starts at the first byte. Peeking shows only what is
    buffered: a producer that writes a blank line, then pauses, would be decided on nothing. The blank
    bytes read while waiting are put back in front, so line numbers (and text format's empty
    documents) stay as they were.
    """
    head = fh.peek(4096)  # type: ignore[attr-defined]
    if not head:  # empty; the end is not read twice (a terminal's Ctrl-D is not sticky)
        return InputFormat.text, io.BytesIO(b"")
    if head.lstrip(_BLANK):
        return _format_of(head), fh
    seen = bytearray()
    while True:
        chunk = fh.read1(65536)  # type: ignore[attr-defined]  # waits for the next bytes, no more
        seen += chunk
        if not chunk:
            return _format_of(bytes(seen)), io.BytesIO(bytes(seen))
        if chunk.lstrip(_BLANK):
            return _format_of(bytes(seen)), io.BufferedReader(_Prefixed(bytes(seen), fh))


def _format_of(head: bytes) -> InputFormat:
    first = head.lstrip(_BLANK)[:1]
    if first == b"[":
        return InputFormat.json
    if first in (b"{", b'"'):
        return InputFormat.jsonl
    return InputFormat.text


class _Prefixed(io.RawIOBase):
    """`head`, then the rest of `rest`: a stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            data, self._head = self._head[:len(buffer)], self._head[len(buffer):]
        else:
            data = self._rest.read1(len(buffer))  # type: ignore[attr-defined]
        buffer[:len(data)] = data
        return len(data)


def _read_stream(fh: IO[bytes], source: str, fmt: InputFormat, on_invalid: OnInvalid) -> Iterator[Record]:
    sniffed = fmt is InputFormat.auto
    if sniffed:
        fmt, fh = _sniff(fh)
    if fmt is InputFormat.json:
        return _read_json_array(fh, source, on_invalid, sniffed)
    parse = (_sniffed_jsonl_line if sniffed else _jsonl_line) if fmt is InputFormat.jsonl else _text_line
    return _read_lines(fh, source, parse, on_invalid)


def _read_lines(fh: IO[bytes], source: str, parse: Callable[[bytes, str, int], Record | None],
                on_invalid: OnInvalid) -> Iterator[Record]:
    for lineno, raw in enumerate(fh, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            record = parse(raw, source, lineno)
        except InputError as err:
            report_invalid(on_invalid, err)
            continue
        if record is not None:
            yield record


def _jsonl_line(raw: bytes, source: str, lineno: int, sniffed: bool = False) -> Record | None:
    if not raw.strip():
        return None  # blank lines separate nothing in JSONL; an empty document is `""`
    if b"\0" in raw:
        raise InputError(f"{source}:{lineno}: {_nul_reason(raw, lineno)}")
    hint = _TEXT_HINT if sniffed else ""
    value = _parse_json(raw, source, lineno, hint)
    if not isinstance(value, (dict, str)):
        _document_value(value, f"{source}:{lineno}", hint)
    return Record(value, source, lineno, nbytes=len(raw))


def jsonl_record(raw: bytes, source: str, lineno: int) -> Record | None:
    """One JSONL line as `read_records` parses it (None for a blank line), for readers that split lines
    themselves (Ray workers); a bad line raises InputError naming `source:lineno`."""
    return _jsonl_line(raw, source, lineno)


def _sniffed_jsonl_line(raw: bytes, source: str, lineno: int) -> Record | None:
    return _jsonl_line(raw, source, lineno, sniffed=True)


_TEXT_HINT = " (the input was taken for JSON by its first character; for plain text use --input-format text)"


def _text_line(raw: bytes, source: str, lineno: int) -> Record:
    if b"\0" in raw:
        raise InputError(f"{source}:{lineno}: {_nul_reason(raw, lineno)}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}:{lineno}: {_utf8_reason(raw, lineno, exc.start)}") from exc
    return Record(text.rstrip("\r\n"), source, lineno, nbytes=len(raw))


def _read_json_array(fh: IO[bytes], source: str, on_invalid: OnInvalid = None,
                     sniffed: bool = False) -> Iterator[Record]:
    """A JSON array is parsed whole (use JSONL to stream); a bad element is skippable like a bad line."""
    data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return  # empty input is empty, whatever its format
    if b"\0" in data:
        lineno = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise InputError(f"{source}:{lineno}: {_nul_reason(data, lineno)}")
    value = _parse_json(data, source, None, _TEXT_HINT if sniffed else "")
    if not isinstance(value, list):
        raise InputError(f"{source}: expected a JSON array of documents, got {json_kind(value)}")
    for i, item in enumerate(value):
        where = f"{source}: element {i}"
        try:
            _check_writable(item, where)
            record = Record(_document_value(item, where), source, i, element=True)
        except InputError as err:
            report_invalid(on_invalid, err)
            continue
        yield record


def _document_value(value: Any, where: str, hint: str = "") -> Any:
    if isinstance(value, (dict, str)):
        return value
    raise InputError(f"{where}: expected a JSON object or string, got {json_kind(value)}{hint}")


# --- JSON values exactly as written -------------------------------------------------------------------
#
# orjson is fast but reads numbers as float or 64-bit int: 123456789012345678901234567890 and
# 1E5 would come back as 1.2345678901234568e+29 and 100000.0, and 1e400 is refused. We never use
# those numbers, so their text is what must survive. A line goes the slow, exact way only when one
# of its number tokens would not come back from orjson as written.

_MAX_DEPTH = 254  # arrays and objects nested in one record: the most orjson (our writer) can write back


def _parse_json(raw: bytes, source: str, lineno: int | None, hint: str = "") -> Any:
    """Parse one JSON line (or a whole file when `lineno` is None); numbers orjson would change are
    kept as their JSON text (`orjson.Fragment`), and a value our writer could not write is refused."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("number is infinity"):  # valid JSON beyond a double, like 1e400
            return _parse_exact(raw, source, lineno, exc)
        where = f"{source}:{lineno or exc.lineno}"
        if "depth limit" in str(exc):
            raise InputError(f"{where}: {_too_deep()}") from exc
        if "UTF-8" in str(exc):
            raise InputError(f"{where}: {_utf8_reason(raw, lineno or 1, None)}") from exc
        raise InputError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}{hint}") from exc
    if not _written_as_read(raw, value, source, lineno):
        return _parse_exact(raw, source, lineno, None)
    return value


_BLANKS = b" \t\r\n"


def _written_as_read(raw: bytes, value: Any, source: str, lineno: int | None) -> bool:
    """Whether orjson writes every number of `value` back as `raw` has it (refusing a line it cannot write).

    Most lines are orjson's own output give or take blanks: one C-speed comparison settles them.
    Other lines (`\\u00e9` escapes, duplicate keys) have their number tokens checked one by one.
    """
    if b"\\u" not in raw:  # orjson writes non-ASCII as UTF-8: a line with `\\u00e9` cannot compare equal
        try:
            if orjson.dumps(value).translate(None, _BLANKS) == raw.translate(None, _BLANKS):
                return True
        except orjson.JSONEncodeError as exc:
            if lineno is not None:  # a whole JSON array is one level deeper than its elements: check those
                raise InputError(f"{source}:{lineno}: {_not_writable(exc)}") from exc
    elif lineno is not None and raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH:
        _check_writable(value, f"{source}:{lineno}")
    if b'\\"' in raw:  # without escaped backslashes and quotes, every `"` left opens or closes a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(raw.split(b'"')[::2])
    # Integers of up to 18 digits always come back as written: only the others are tried.
    return all(_round_trips(t) for t in _NUMBER.findall(outside_strings) if not (t.isdigit() and len(t) < 19))


_NUMBER = re.compile(rb"-?[0-9][0-9.eE+\-]*")  # outside strings, only numbers have digits


def _round_trips(token: bytes) -> bool:
    """Whether orjson writes back the number it reads from `token` as exactly `token`."""
    try:
        return orjson.dumps(orjson.loads(token)) == token
    except orjson.JSONDecodeError:
        return False


def _exact_number(text: str) -> Any:
    token = text.encode()
    return orjson.loads(token) if _round_trips(token) else orjson.Fragment(token)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_exact(raw: bytes, source: str, lineno: int | None, orjson_error: orjson.JSONDecodeError | None) -> Any:
    """The slow exact path: the stdlib parser hands us each number's text."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_int=_exact_number, parse_float=_exact_number,
                           parse_constant=_no_constant)
    except RecursionError as exc:
        raise InputError(f"{source}:{lineno or 1}: {_too_deep()}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}:{lineno or 1}: {_utf8_reason(raw, lineno or 1, exc.start)}") from exc
    except ValueError as exc:  # JSONDecodeError and the NaN refusal; orjson's words name the problem better
        error = orjson_error or exc
        where = f"{source}:{lineno or getattr(error, 'lineno', 1)}"
        raise InputError(f"{where}: invalid JSON: {getattr(error, 'msg', error)}") from exc
    if lineno is not None:
        _check_writable(value, f"{source}:{lineno}")
    return value


def _check_writable(value: Any, where: str) -> None:
    """Refuse here, where the record is read, a value the writer could not write (it would fail later,
    after the records before it had been read, and lose them)."""
    if isinstance(value, str):
        return
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise InputError(f"{where}: {_not_writable(exc)}") from exc


def _not_writable(exc: orjson.JSONEncodeError) -> str:
    if "surrogates" in str(exc):  # only the exact path's parser lets `\\ud800` through; orjson refuses it
        return "invalid JSON: a string holds a lone surrogate escape (\\ud800 to \\udfff)"
    return _too_deep() if "ecursion" in str(exc) else f"cannot be written back as JSON: {exc}"


def _too_deep() -> str:
    return f"nested too deeply: more than {_MAX_DEPTH} levels of arrays and objects, the most JSON output can hold"


# --- text that is not UTF-8 -----------------------------------------------------------------------------

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"), (b"\xff\xfe", "UTF-16LE"),
         (b"\xfe\xff", "UTF-16BE"))


def _wide_encoding(raw: bytes, lineno: int) -> str | None:
    """The UTF-16 or UTF-32 encoding a line looks like (by its BOM, or by how many bytes are NUL), if any."""
    if lineno == 1:
        for bom, name in _BOMS:
            if raw.startswith(bom):
                return name
    share = raw.count(0) / max(len(raw), 1)
    if share < 0.3:
        return None
    name = "UTF-32" if share >= 0.6 else "UTF-16"
    if lineno > 1:
        return name  # after the first newline the byte order can no longer be told from the line
    return name + ("BE" if raw[:1] == b"\0" else "LE")


def _encoding_hint(raw: bytes, lineno: int) -> str | None:
    name = _wide_encoding(raw, lineno)
    if name is None:
        return None
    source = name if name[-2:] in ("LE", "BE") else name + "LE"
    return f"the input looks like {name} text, not UTF-8; convert it first: iconv -f {source} -t UTF-8"


def _nul_reason(raw: bytes, lineno: int) -> str:
    return _encoding_hint(raw, lineno) or "NUL byte in the line (binary data?)"


def _utf8_reason(raw: bytes, lineno: int, start: int | None) -> str:
    at = "" if start is None else f" at byte {start}"
    return _encoding_hint(raw, lineno) or f"invalid UTF-8{at}"
