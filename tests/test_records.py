"""Records in and out: exact pass-through, records the writer cannot write, our keys, terminal safety."""

from __future__ import annotations

import io
import json
from pathlib import Path

import orjson
import pytest
from conftest import BERT
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rerank_cli.cli.app import app
from rerank_cli.errors import InputError
from rerank_cli.records.readers import InputFormat, read_records
from rerank_cli.records.record import Scored
from rerank_cli.records.writers import output_record

runner = CliRunner()


def run(*args: object, stdin: str | bytes | None = None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def score(*args: object, stdin: str | bytes | None = None, command: str = "score"):
    return run(command, "-q", "q", "-m", BERT, *args, stdin=stdin)


def deep(levels: int) -> bytes:
    return b'{"text": "deep", "x": ' + b"[" * levels + b"]" * levels + b"}"


def lines(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.split(b"\n") if line]


# --- item 3: a record the writer cannot write is refused where it is read -----------------------------

def test_too_deep_record_is_located_and_nothing_before_it_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "ok"}\n' + deep(300) + b'\n{"text": "after"}\n')
    result = score(path)
    assert result.exit_code == 65, result.output
    assert result.stderr.startswith(f"rerank: error: {path}:2: ") and "nested" in result.stderr
    assert [r["text"] for r in lines(result.stdout_bytes)] == ["ok"]
    skipped = score(path, "--skip-invalid")
    assert skipped.exit_code == 0 and [r["text"] for r in lines(skipped.stdout_bytes)] == ["ok", "after"]
    assert f"skipped {path}:2: " in skipped.stderr


def test_deepest_writable_record_is_written(tmp_path: Path) -> None:
    # The output record has the input's depth: the record's object plus 253 arrays is the most that fits.
    result = score(stdin=deep(253) + b"\n")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b'{"text":"deep","x":' + b"[" * 253 + b"]" * 253 + b',"index":0')
    assert score(stdin=deep(254) + b"\n").exit_code == 65
    escaped = deep(254).replace(b'"deep"', b'"d\\u00e9ep"')  # takes another path through the reader
    with pytest.raises(InputError, match=r"<stdin>:1: nested too deeply"):
        read_line(escaped)


def test_too_deep_json_array_element_is_skippable(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'[{"text": "ok"}, ' + deep(300) + b', {"text": "after"}]')
    assert "element 1: " in score(path).stderr
    skipped = score(path, "--skip-invalid")
    assert skipped.exit_code == 0 and [r["text"] for r in lines(skipped.stdout_bytes)] == ["ok", "after"]


# --- item 9: fields we do not own come out as they went in ---------------------------------------------

NUMBERS = [b"123456789012345678901234567890", b"-9223372036854775809", b"18446744073709551616", b"1e400",
           b"-1e400", b"1e-400", b"-0.0", b"-0", b"1.0", b"1", b"1E5", b"1e5", b"1.50", b"0.1000000000000000000001",
           b"2.5e-3", b"1e-7", b"17.25", b"-12", b"9223372036854775807"]


def numbers_record(text: bytes = b'"caf\\u00e9 \\ud83d\\ude00 \\"q\\" 1.50"') -> bytes:
    fields = b", ".join(b'"n%d": %s' % (i, n) for i, n in enumerate(NUMBERS))
    nested = b'{"a": [%s], "b": {"c": %s}}' % (b", ".join(NUMBERS), b", ".join(b"[%s]" % n for n in NUMBERS[:1]))
    return b'{"text": %s, %s, "nested": %s}' % (text, fields, nested)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_numbers_pass_through_with_their_text(fmt: str) -> None:
    result = score("-f", fmt, stdin=numbers_record() + b"\n")
    assert result.exit_code == 0, result.output
    out = result.stdout_bytes
    for i, number in enumerate(NUMBERS):
        assert b'"n%d":%s,' % (i, number) in out
    assert b'"a":[%s]' % b",".join(NUMBERS) in out and b'"c":[%s]' % NUMBERS[0] in out
    (row,) = json.loads(out) if fmt == "json" else [json.loads(out)]  # orjson refuses 1e400
    assert row["text"] == 'caf\u00e9 \U0001f600 "q" 1.50' and row["index"] == 0


def test_numbers_pass_through_from_a_json_array_and_rerank(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b"[" + numbers_record() + b', {"text": "b", "big": 123456789012345678901234567890}]')
    result = score(path, command="rerank")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.count(b'"n0":123456789012345678901234567890,') == 1
    assert result.stdout_bytes.count(b'"big":123456789012345678901234567890,') == 1
    assert b'"n3":1e400,' in result.stdout_bytes


def read_line(line: bytes) -> Scored:
    (record,) = read_records(["-"], InputFormat.jsonl, stdin=io.BufferedReader(io.BytesIO(line)))
    return Scored(record, 0, 0.5)


json_numbers = st.from_regex(rb"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?\Z")


# JSON texts for the document: plain, a \u escape (off the fastest check), quotes and backslashes that
# must not be taken for the ends of the string when numbers are looked for outside strings.
TEXTS = {b'"t"': "t", b'"caf\\u00e9"': "caf\u00e9", b'"a\\\\"': "a\\", b'"say \\"1.50\\", 2"': 'say "1.50", 2',
         b'"\\\\\\"x\\u00e9"': '\\"x\u00e9'}


@settings(max_examples=200, deadline=None)
@given(numbers=st.lists(json_numbers, min_size=1, max_size=4), text=st.sampled_from(sorted(TEXTS)))
def test_any_json_number_is_written_as_read(numbers: list[bytes], text: bytes) -> None:
    line = b'{"text": %s, "n": [%s], "m": %s}' % (text, b", ".join(numbers), numbers[0])
    row = read_line(line)
    assert row.record.data["text"] == TEXTS[text]
    assert b'"n":[%s],"m":%s,"index":0' % (b",".join(numbers), numbers[0]) in orjson.dumps(output_record(row))


def test_exact_path_refuses_what_orjson_refuses() -> None:
    with pytest.raises(InputError, match=r"<stdin>:1: invalid JSON: a string holds a lone surrogate"):
        read_line(b'{"text": "t", "n": 1e400, "s": "\\ud800"}')
    with pytest.raises(InputError, match=r"<stdin>:1: invalid JSON"):
        read_line(b'{"text": "t", "n": 1e400, "s": NaN}')


def test_input_score_keeps_its_text_when_moved() -> None:
    result = score(stdin=b'{"id": 123456789012345678901234567890, "score": 1.50, "text": "t"}\n')
    assert result.stdout_bytes.startswith(b'{"id":123456789012345678901234567890,"input_score":1.50,"text":"t",')


# --- item 7: --score-key cannot overwrite our keys or the document -----------------------------------------

@pytest.mark.parametrize(("key", "extra"), [("index", []), ("rank", []), ("text", []), ("", []),
                                            ("body", ["--field", "body"]), ("input_index", []),
                                            ("input_rank", [])])
def test_score_key_that_would_overwrite_is_a_usage_error(tmp_path: Path, key: str, extra: list[str]) -> None:
    # A missing model proves the check comes first: loading it would exit 69.
    for command in ("score", "rerank"):
        result = run(command, "-q", "q", "-m", tmp_path / "nope", "--score-key", key, *extra, stdin="x\n")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("rerank: error: ") and result.stderr.count("\n") == 1
        assert "--score-key" in result.stderr


# --- item 15: both `score` and `input_score` is a located, skippable input error ------------------------

@pytest.mark.parametrize(("command", "record", "extra"), [
    ("score", b'{"score": 1, "input_score": 2, "text": "x"}', []),
    ("rerank", b'{"rank": 1, "input_rank": 2, "text": "x"}', []),
    ("score", b'{"ce": 1, "input_ce": 2, "text": "x"}', ["--score-key", "ce"]),
])
def test_input_key_clash_is_located_and_skippable(tmp_path: Path, command: str, record: bytes,
                                                  extra: list[str]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "ok"}\n' + record + b'\n{"text": "after"}\n')
    result = score(path, *extra, "-f", "jsonl", command=command)
    assert result.exit_code == 65 and result.stderr.startswith(f"rerank: error: {path}:2: has both ")
    if command == "score":
        assert [r["text"] for r in lines(result.stdout_bytes)] == ["ok"]  # nothing before it lost
    skipped = score(path, *extra, "--skip-invalid", command=command)
    assert skipped.exit_code == 0
    assert sorted(r["text"] for r in lines(skipped.stdout_bytes)) == ["after", "ok"]


# --- item 17: documents cannot drive the terminal ---------------------------------------------------------

EVIL = "\x1b[31mred\x1b]0;pwned\x07 \x9b2J \u202eevil\u2066 \x7f"


def test_table_shows_control_characters_escaped() -> None:
    record = orjson.dumps({"id": "\x1b[2Jid", "text": EVIL}) + b"\n"
    result = run("score", "-q", "q", "-m", BERT, "-f", "table", stdin=record)
    assert result.exit_code == 0, result.output
    for char in "\x1b\x07\x9b\u202e\u2066\x7f":
        assert char not in result.stdout
    assert "\\x1b[31mred\\x1b]0;pwned\\x07" in result.stdout and "\\x1b[2Jid" in result.stdout


def test_tsv_escapes_control_characters() -> None:
    record = orjson.dumps({"id": "a\tb\x1b", "text": EVIL}) + b"\n"
    result = score("-f", "tsv", stdin=record)
    assert result.exit_code == 0, result.output
    header, row = result.stdout.split("\n")[:2]
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    cells = row.split("\t")
    assert cells[2] == "a\\tb\\x1b" and cells[3].startswith("\\x1b[31mred\\x1b]0;pwned\\x07")


def test_error_messages_do_not_pass_control_characters() -> None:
    result = score(stdin=orjson.dumps({"\x1b]0;pwned\x07": 1, ":smile:": 2}) + b"\n")
    assert result.exit_code == 65
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "\\x1b]0;pwned" in result.stderr
    assert "fields: \\x1b]0;pwned\\x07, :smile:)" in result.stderr  # field names as they are, no emoji


# --- TSV and table columns -----------------------------------------------------------------------------

def test_tsv_header_names_the_score_key_and_the_id() -> None:
    data = b'{"id": "d1", "text": "a"}\n{"text": "b"}\n{"id": 123456789012345678901234567890, "text": "c"}\n'
    result = score("-f", "tsv", "--score-key", "ce", stdin=data)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    # The id goes after the score, so that the score keeps its column whether or not there are ids.
    assert rows[0] == ["index", "ce", "id", "text"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [("0", "d1", "a"), ("1", "", "b"),
                                                     ("2", "123456789012345678901234567890", "c")]
    ranked = score("-f", "tsv", "--id-field", "doc", stdin=b'{"doc": 5, "text": "a"}\n', command="rerank")
    header, row = ranked.stdout.splitlines()
    assert header == "index\trank\tscore\tdoc\ttext" and row.split("\t")[:2] == ["0", "1"]
    assert row.split("\t")[3:] == ["5", "a"]


def test_tsv_header_on_empty_input_and_without_ids() -> None:
    assert score("-f", "tsv", "--input-format", "jsonl", stdin="").stdout == "index\tscore\ttext\n"
    assert score("-f", "tsv", stdin="a\n").stdout.startswith("index\tscore\ttext\n0\t")


def test_table_shows_the_id_column() -> None:
    result = run("rerank", "-q", "q", "-m", BERT, "-f", "table", stdin=b'{"id": "doc-7", "text": "a"}\n')
    assert result.exit_code == 0 and "doc-7" in result.stdout and " id " in result.stdout


# --- rough edges of reading ------------------------------------------------------------------------------

def test_not_json_in_autodetected_input_suggests_text_format(tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_bytes(b'{"text": "ok"}\n{this is prose}\n')
    result = score(path)
    assert result.exit_code == 65 and "invalid JSON" in result.stderr and "--input-format text" in result.stderr
    explicit = tmp_path / "notes.jsonl"
    explicit.write_bytes(path.read_bytes())
    assert "--input-format text" not in score(explicit).stderr


@pytest.mark.parametrize(("data", "encoding"), [
    ("\ufeffhello\nworld\n".encode("utf-16-le"), "UTF-16LE"),
    ("\ufeffhello\nworld\n".encode("utf-16-be"), "UTF-16BE"),
    ("hello\nworld\n".encode("utf-16-le"), "UTF-16LE"),
    ('{"text": "hello"}\n'.encode("utf-16-le"), "UTF-16LE"),
    ("\ufeffhello\n".encode("utf-32-le"), "UTF-32LE"),
])
def test_utf16_input_names_the_encoding(tmp_path: Path, data: bytes, encoding: str) -> None:
    path = tmp_path / "docs.txt"
    path.write_bytes(data)
    result = score(path)
    assert result.exit_code == 65
    assert f"{path}:1: " in result.stderr and encoding in result.stderr and "iconv" in result.stderr
    assert "binary data" not in result.stderr


@pytest.mark.parametrize(("data", "fmt"), [(b"", "json"), (b"", "auto"), (b"\xef\xbb\xbf \n", "json")])
def test_empty_json_input_is_empty(tmp_path: Path, data: bytes, fmt: str) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(data)
    result = score(path, "--input-format", fmt)
    assert result.exit_code == 0 and result.stdout == "", result.output


def test_every_json_array_element_error_is_skippable(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'[{"text": "ok"}, 5, null, {"body": "x"}, {"text": true}, ["t"], {"text": "after"}]')
    result = score(path, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in lines(result.stdout_bytes)] == ["ok", "after"]
    assert result.stderr.count("rerank: warning: skipped ") == 6


@pytest.mark.parametrize(("record", "kind"), [(b'{"text": 5}', "a number"), (b'{"text": null}', "null"),
                                              (b'{"text": [1]}', "an array"), (b'{"text": {}}', "an object"),
                                              (b'{"text": false}', "a boolean"), (b'{"text": 1e400}', "a number")])
def test_errors_name_json_kinds(record: bytes, kind: str) -> None:
    result = score(stdin=record + b"\n")
    assert result.exit_code == 65 and f"field 'text' is {kind}, not a string" in result.stderr


@pytest.mark.parametrize("args", [["--id-field", "rank"], ["--id-field", "index"], ["--id-field", "score"],
                                  ["--score-key", "rel", "--id-field", "rel"], ["--id-field", "text"],
                                  ["--id-field", ""]])
def test_id_field_that_would_share_a_column_name_is_a_usage_error(args: list[str]) -> None:
    result = run("score", "-q", "q", "-m", BERT, "-f", "tsv", *args, stdin='{"text": "paris", "rank": 3}\n')
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("rerank: error: --id-field") and result.stderr.count("\n") == 1


def test_tsv_header_names_every_column_it_writes() -> None:
    # A stranger's test: the header dropped the id column when --id-field was not shown elsewhere.
    for args in (["--id-field", "rankx"], ["--score-key", "id"], []):
        result = run("score", "-q", "q", "-m", BERT, "-f", "tsv", *args,
                     stdin='{"text": "paris", "rankx": 3, "id": "a"}\n')
        assert result.exit_code == 0, result.stderr
        header, row = result.stdout.splitlines()
        assert len(header.split("\t")) == len(row.split("\t"))
        assert len(set(header.split("\t"))) == len(header.split("\t"))  # no column name twice


def test_a_bad_record_leaves_a_closed_json_array_and_the_table_so_far() -> None:
    # A stranger's test: -f json stopped by a bad record left an unclosed `[`.
    stdin = '{"text": "a"}\n{"text": "b"}\nnot json\n'
    result = run("score", "-q", "q", "-m", BERT, "-f", "json", stdin=stdin)
    assert result.exit_code == 65
    assert [r["text"] for r in json.loads(result.stdout)] == ["a", "b"]
    table = run("score", "-q", "q", "-m", BERT, "-f", "table", stdin=stdin)
    assert table.exit_code == 65 and "a" in table.stdout.split() and "b" in table.stdout.split()


def test_skipped_records_are_reported_even_with_quiet() -> None:
    result = run("score", "-q", "q", "-m", BERT, "--skip-invalid", "--quiet", stdin='{"text": "a"}\nnot json\n')
    assert result.exit_code == 0
    assert "skipped <stdin>:2:" in result.stderr and "skipped 1 invalid record" in result.stderr
