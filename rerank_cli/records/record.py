"""The record types every stage shares: an input `Record` as read, and a `Scored` record as written.

Records stay plain JSON values (`dict[str, Any]` or a string): we pass them through, so we do
not model them. Each remembers where it came from, so that any later error can say `FILE:LINE`.
A number whose JSON text would not survive a float or a 64-bit integer is kept as an
`orjson.Fragment` holding that text, so that it is written back exactly as it was read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InputError

OnInvalid = Callable[[InputError], None] | None


def report_invalid(on_invalid: OnInvalid, err: InputError) -> None:
    """A bad record: raise `err`, or with `--skip-invalid` hand it to `on_invalid` and let the caller skip it."""
    if on_invalid is None:
        raise err
    on_invalid(err)


@dataclass(frozen=True, slots=True)
class Record:
    """One input document as read: a JSON object, a bare JSON string, or a plain-text line."""

    data: Any
    source: str
    line: int
    element: bool = False  # True inside a JSON array: `line` is then the 0-based element number
    nbytes: int = 0  # bytes of input this record took (for progress)

    def where(self) -> str:
        """`FILE:LINE` (or `FILE: element N` inside a JSON array) for error messages."""
        return f"{self.source}: element {self.line}" if self.element else f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Scored:
    """A record with its 0-based position across all inputs, its score and (for rerank) its rank.

    `extra` holds keys written before ours, such as the `query_id` of `rerank --queries`.
    `chunk` is the best window (number, start, end character offsets) of a document scored by windows.
    """

    record: Record
    index: int
    score: float
    rank: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()
    chunk: tuple[int, int, int] | None = None


def doc_text(record: Record, field: str) -> str:
    """The document text of a record: the line itself, a bare JSON string, or `record[field]`."""
    data = record.data
    if isinstance(data, str):
        return data
    if field not in data:
        keys = ", ".join(printable(k) for k in list(data)[:8]) or "none"
        raise InputError(f"{record.where()}: no {field!r} field (fields: {keys}); name the text field with --field")
    value = data[field]
    if not isinstance(value, str):
        raise InputError(f"{record.where()}: field {field!r} is {json_kind(value)}, not a string")
    return value


def json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words (users think in numbers and arrays, not int and list)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, orjson.Fragment)):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), "a value of unknown kind")


def json_text(value: Any) -> str:
    """A field value as one cell of text: a string as it is, anything else as its JSON text."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


# Characters that make a terminal do something instead of showing them: C0 and C1 controls and DEL
# (escape sequences, bells, OSC titles), line and paragraph separators, and bidi overrides and
# isolates, which reorder the text around them.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """`text` with every character that could drive a terminal written as an escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
