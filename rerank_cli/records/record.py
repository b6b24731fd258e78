"""The record types every stage shares: an input `Record` as read, and a `Scored` record as written.

Records stay plain JSON values (`dict[str, Any]` or a string): we pass them through, so we do
not model them. Each remembers where it came from, so that any later error can say `FILE:LINE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

OnInvalid = Callable[[InputError], None] | None


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
    """A record with its 0-based position across all inputs, its score and (for rerank) its rank."""

    record: Record
    index: int
    score: float
    rank: int | None = None


def doc_text(record: Record, field: str) -> str:
    """The document text of a record: the line itself, a bare JSON string, or `record[field]`."""
    data = record.data
    if isinstance(data, str):
        return data
    if field not in data:
        keys = ", ".join(list(data)[:8]) or "none"
        raise InputError(f"{record.where()}: no {field!r} field (fields: {keys}); name the text field with --field")
    value = data[field]
    if not isinstance(value, str):
        raise InputError(f"{record.where()}: field {field!r} is {type(value).__name__}, not a string")
    return value
