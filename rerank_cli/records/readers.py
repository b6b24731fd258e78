"""Files and stdin -> record iterators: JSONL, plain text (one document per line) or a JSON array.

Readers know nothing about models: they yield `Record`s that remember where they came from, so
that every later error can say `FILE:LINE: what is wrong`.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import IO, Any

import orjson

from ..errors import InputError, NoInputError
from .record import OnInvalid, Record

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


def check_sources(paths: Sequence[str], stdin: IO[bytes] | None = None) -> list[str]:
    """Return the inputs to read (stdin when none), failing before any output if one cannot be read.

    `stdin` stands in for the process's stdin (tests, library callers); without it, a stdin that the
    caller closed (`rerank score ... <&-`) is a missing input (66), not a crash on first read.
    """
    paths = list(paths) or [STDIN]
    for path in paths:
        if path == STDIN:
            if stdin is None and sys.stdin is None:
                raise NoInputError(CLOSED_STDIN)
            continue
        if not os.path.exists(path):
            raise NoInputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise NoInputError(f"{path}: is a directory, not a file of documents")
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
    if fmt is InputFormat.auto:
        fmt, fh = _sniff(fh)
    if fmt is InputFormat.json:
        return _read_json_array(fh, source)
    return _read_lines(fh, source, _jsonl_line if fmt is InputFormat.jsonl else _text_line, on_invalid)


def _read_lines(fh: IO[bytes], source: str, parse: Callable[[bytes, str, int], Record | None],
                on_invalid: OnInvalid) -> Iterator[Record]:
    for lineno, raw in enumerate(fh, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            record = parse(raw, source, lineno)
        except InputError as err:
            if on_invalid is None:
                raise
            on_invalid(err)
            continue
        if record is not None:
            yield record


def _jsonl_line(raw: bytes, source: str, lineno: int) -> Record | None:
    if not raw.strip():
        return None  # blank lines separate nothing in JSONL; an empty document is `""`
    if b"\0" in raw:
        raise InputError(f"{source}:{lineno}: NUL byte in the line (binary data?)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "invalid UTF-8" if "UTF-8" in str(exc) else f"invalid JSON: {exc}"
        raise InputError(f"{source}:{lineno}: {reason}") from exc
    return Record(_document_value(value, f"{source}:{lineno}"), source, lineno, nbytes=len(raw))


def _text_line(raw: bytes, source: str, lineno: int) -> Record:
    if b"\0" in raw:
        raise InputError(f"{source}:{lineno}: NUL byte in the line (binary data?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}:{lineno}: invalid UTF-8 at byte {exc.start}") from exc
    return Record(text.rstrip("\r\n"), source, lineno, nbytes=len(raw))


def _read_json_array(fh: IO[bytes], source: str) -> Iterator[Record]:
    """A JSON array is parsed whole (use JSONL to stream); errors cannot be skipped inside it."""
    data = fh.read()
    try:
        value = orjson.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(value, list):
        raise InputError(f"{source}: expected a JSON array of documents, got {_kind(value)}")
    for i, item in enumerate(value):
        yield Record(_document_value(item, f"{source}: element {i}"), source, i, element=True)


def _document_value(value: Any, where: str) -> Any:
    if isinstance(value, (dict, str)):
        return value
    raise InputError(f"{where}: expected a JSON object or string, got {_kind(value)}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
