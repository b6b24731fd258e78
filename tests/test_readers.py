"""Readers: every input format, auto-detection, and located errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rerank_cli.errors import InputError, NoInputError
from rerank_cli.records.readers import InputFormat, read_records


def read(path: Path | str, fmt: InputFormat = InputFormat.auto, stdin: bytes = b"") -> list:
    return [r.data for r in read_records([str(path)], fmt, stdin=io.BufferedReader(io.BytesIO(stdin)))]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_jsonl_objects_strings_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", b'{"text": "a", "id": 1}\n\n"bare"\n  \n{"text": ""}')
    assert read(path) == [{"text": "a", "id": 1}, "bare", {"text": ""}]


def test_text_lines_keep_empty_and_whitespace_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "d.txt", b"first\r\n\n   \n{not json}\nlast")
    assert read(path) == ["first", "", "   ", "{not json}", "last"]


def test_json_array(tmp_path: Path) -> None:
    assert read(write(tmp_path, "d.json", b'[{"text": "a"}, "b"]')) == [{"text": "a"}, "b"]


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("d.json", b'{"text": "jsonl in disguise"}\n{"text": "b"}\n', [{"text": "jsonl in disguise"}, {"text": "b"}]),
        ("noext", b'  [ "a" ]', ["a"]),
        ("noext", b'{"text": "x"}\n', [{"text": "x"}]),
        ("noext", b"plain words\n", ["plain words"]),
        ("d.txt", b'{"text": "x"}\n', ['{"text": "x"}']),
        ("bom.jsonl", b'\xef\xbb\xbf{"text": "x"}\n', [{"text": "x"}]),
    ],
)
def test_auto_detection(tmp_path: Path, name: str, data: bytes, expected: list) -> None:
    assert read(write(tmp_path, name, data)) == expected


def test_stdin_is_sniffed_too() -> None:
    assert read("-", stdin=b'[{"text": "a"}]') == [{"text": "a"}]
    assert read("-", stdin=b"hello\nworld\n") == ["hello", "world"]
    assert read("-", InputFormat.text, stdin=b'{"a": 1}\n') == ['{"a": 1}']


def test_several_files_in_order(tmp_path: Path) -> None:
    a = write(tmp_path, "a.txt", b"1\n2\n")
    b = write(tmp_path, "b.jsonl", b'"3"\n')
    records = list(read_records([str(a), str(b)]))
    assert [r.data for r in records] == ["1", "2", "3"]
    assert [r.where() for r in records] == [f"{a}:1", f"{a}:2", f"{b}:1"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("d.jsonl", b'{"text": "ok"}\n{"text": \n', r"d.jsonl:2: invalid JSON"),
        ("d.jsonl", b'{"text": "ok"}\n\n[1, 2]\n', r"d.jsonl:3: expected a JSON object or string, got an array"),
        ("d.jsonl", b'"ok"\n{"text": "\xff"}\n', r"d.jsonl:2: invalid UTF-8"),
        ("d.txt", b"ok\nbad \xff\xfe\n", r"d.txt:2: invalid UTF-8"),
        ("d.json", b'[{"text": "a"},\n{"text": ', r"d.json:2: invalid JSON"),
        ("d.json", b'[{"text": "a"}, 5]', r"d.json: element 1: expected a JSON object or string, got a number"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = write(tmp_path, name, data)
    with pytest.raises(InputError, match=message):
        read(path)


def test_missing_file_fails_before_reading_anything(tmp_path: Path) -> None:
    good = write(tmp_path, "a.txt", b"x\n")
    records = read_records([str(good), str(tmp_path / "missing.txt")])
    with pytest.raises(NoInputError, match="missing.txt: no such file"):
        next(records)
    with pytest.raises(NoInputError, match="is a directory"):
        next(read_records([str(tmp_path)]))
