"""Writers: field pass-through, the input-score rule, and each machine format."""

from __future__ import annotations

import io

import orjson
import pytest

from rerank_cli.errors import InputError
from rerank_cli.records.record import Record, Scored
from rerank_cli.records.writers import OutputFormat, open_writer, output_record


def row(data: object, index: int = 0, score: float = 1.5, rank: int | None = None) -> Scored:
    return Scored(Record(data, "in.jsonl", index + 1), index, score, rank)


def test_fields_pass_through_in_order_with_ours_appended() -> None:
    data = {"id": "x", "text": "t", "meta": {"a": [1, 2]}, "z": None}
    out = output_record(row(data, 3, 0.25, rank=1))
    assert list(out) == ["id", "text", "meta", "z", "index", "score", "rank"]
    assert out["meta"] == {"a": [1, 2]} and out["score"] == 0.25 and out["index"] == 3


def test_plain_text_records() -> None:
    assert output_record(row("hello", 2, 0.5)) == {"index": 2, "text": "hello", "score": 0.5}


def test_existing_score_is_kept_as_input_score_in_place() -> None:
    out = output_record(row({"id": 1, "score": 17.2, "text": "t"}))
    assert list(out) == ["id", "input_score", "text", "index", "score"]
    assert out["input_score"] == 17.2 and out["score"] == 1.5
    assert output_record(row({"score": 3, "text": "t"}), score_key="ce_score")["score"] == 3
    with pytest.raises(InputError, match=r"in.jsonl:1: has both 'score' and 'input_score'.*--score-key"):
        output_record(row({"score": 1, "input_score": 2, "text": "t"}))


class FakeStdout(io.TextIOWrapper):
    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")

    def value(self) -> bytes:
        self.flush()
        return self.buffer.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("batches", [[], [[0, 1], [2]]])
def test_json_array_is_valid_for_any_batching(batches: list[list[int]]) -> None:
    out = FakeStdout()
    writer = open_writer(OutputFormat.json, out, ranked=False)
    for batch in batches:
        writer.write([row({"text": f"t{i}"}, i) for i in batch])
    writer.close()
    parsed = orjson.loads(out.value())
    assert [r["index"] for r in parsed] == [i for b in batches for i in b]


def test_tsv_escapes_and_keeps_full_precision() -> None:
    out = FakeStdout()
    writer = open_writer(OutputFormat.tsv, out, ranked=True)
    writer.write([row({"text": "a\tb\nc\\d"}, 0, 0.123456789012345, rank=1)])
    writer.close()
    header, line = out.value().decode().splitlines()
    assert header == "index\trank\tscore\ttext"
    assert line.split("\t") == ["0", "1", "0.123456789012345", "a\\tb\\nc\\\\d"]


def test_auto_is_jsonl_when_not_a_terminal() -> None:
    out = FakeStdout()
    writer = open_writer(OutputFormat.auto, out, ranked=False)
    writer.write([row("a"), row("b", 1)])
    writer.close()
    assert [orjson.loads(line)["text"] for line in out.value().splitlines()] == ["a", "b"]
