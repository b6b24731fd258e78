"""Request lines -> `Request`s: the Cohere / Jina / infinity rerank request, checked and located.

A request line is `{"query": "...", "documents": [...], "top_n": N, ...}`; a document is a string or
an object with its text under `--field`. Every other key (`id`, `model`, metadata) passes through to
the answer. A bad request is an InputError naming `FILE:LINE` and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .readers import InputFormat, read_records
from .record import OnInvalid, Record, json_kind, printable, report_invalid

# Keys a request line uses; every other key is passed through to its answer.
CONSUMED = ("query", "documents", "top_n", "return_documents")
RESULTS = "results"  # our key in the answer; a request's own `results` is kept as `input_results`


@dataclass(frozen=True, slots=True)
class Request:
    """One query and its documents, as texts to score and as they came in (for `--return-documents`)."""

    query: str
    texts: Sequence[str]
    documents: Sequence[Any]
    keys: dict[str, Any]  # the pass-through keys, in input order
    where: str  # FILE:LINE, for messages
    top_n: int | None = None
    ids: Sequence[str] | None = None  # document ids (TREC runs), written with each result
    return_documents: bool | None = None  # the request's own choice, over --return-documents


@dataclass(frozen=True, slots=True)
class Answer:
    """A scored request: (score, document index) best first (ties in input order), cut to its top_n."""

    request: Request
    ranked: list[tuple[float, int]]


def read_requests(paths: Sequence[str], field: str, on_invalid: OnInvalid = None) -> Iterator[Request]:
    """Requests from JSONL files or stdin, in order; a bad one raises, or goes to `on_invalid` and is skipped."""
    for record in read_records(paths, InputFormat.jsonl, on_invalid=on_invalid):
        try:
            request = parse_request(record, field)
        except InputError as err:
            report_invalid(on_invalid, err)
            continue
        yield request


def parse_request(record: Record, field: str) -> Request:
    """Check one request line and split it into what we score and what passes through."""
    data, where = record.data, record.where()
    if not isinstance(data, dict):
        raise InputError(f'{where}: expected a request object {{"query": ..., "documents": [...]}}, '
                         f"got {json_kind(data)}")
    if "query" not in data:
        raise InputError(f"{where}: no 'query' in the request (keys: {_keys(data)})")
    query = data["query"]
    if not isinstance(query, str):
        raise InputError(f"{where}: 'query' is {json_kind(query)}, not a string")
    if "documents" not in data:
        raise InputError(f"{where}: no 'documents' list in the request (keys: {_keys(data)})")
    documents = data["documents"]
    if not isinstance(documents, list):
        raise InputError(f"{where}: 'documents' is {json_kind(documents)}, not an array")
    texts = [_document_text(doc, i, field, where) for i, doc in enumerate(documents)]
    top_n = data.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        shown = top_n if isinstance(top_n, int) and not isinstance(top_n, bool) else json_kind(top_n)
        raise InputError(f"{where}: 'top_n' must be a positive integer or null, not {shown}")
    back = data.get("return_documents")
    if back is not None and not isinstance(back, bool):
        raise InputError(f"{where}: 'return_documents' is {json_kind(back)}, not true or false")
    if RESULTS in data and f"input_{RESULTS}" in data:
        raise InputError(f"{where}: has both 'results' and 'input_results'; the answer's 'results' would "
                         "overwrite one of them")
    keys = {(f"input_{k}" if k == RESULTS else k): v for k, v in data.items() if k not in CONSUMED}
    return Request(query, texts, documents, keys, where, top_n, return_documents=back)


def _document_text(doc: Any, i: int, field: str, where: str) -> str:
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        raise InputError(f"{where}: documents[{i}] is {json_kind(doc)}, not a string or an object")
    if field not in doc:
        raise InputError(f"{where}: documents[{i}] has no {field!r} field (fields: {_keys(doc)}); "
                         "name the text field with --field")
    text = doc[field]
    if not isinstance(text, str):
        raise InputError(f"{where}: documents[{i}] field {field!r} is {json_kind(text)}, not a string")
    return text


def _keys(data: dict[str, Any]) -> str:
    return ", ".join(printable(k) for k in list(data)[:8]) or "none"


def read_queries(path: str, on_invalid: OnInvalid = None) -> Iterator[tuple[Any, str]]:
    """(id, text) of each query of a file: one query per line (id: its 0-based position), `id<TAB>text`
    lines in a `.tsv` file (as `rerank batch --queries` reads them), or JSONL objects with `text` and `id`
    (or BEIR's `_id`; default the position)."""
    position = 0
    tsv = path.lower().endswith(".tsv")
    for record in read_records([path], InputFormat.text if tsv else InputFormat.auto, on_invalid=on_invalid):
        data = record.data
        try:
            if isinstance(data, str) and tsv:
                qid, tab, text = data.partition("\t")
                if not tab:
                    raise InputError(f"{record.where()}: expected `qid<TAB>text` in a .tsv queries file (no tab)")
                item: tuple[Any, str] = (qid, text)
            elif isinstance(data, str):
                item = (position, data)
            else:
                text = data.get("text")
                if not isinstance(text, str):
                    what = "has no 'text' field" if text is None else f"'text' is {json_kind(text)}, not a string"
                    raise InputError(f"{record.where()}: query {what} (fields: {_keys(data)})")
                item = (data.get("id", data.get("_id", position)), text)
        except InputError as err:
            report_invalid(on_invalid, err)
            continue
        position += 1
        yield item
