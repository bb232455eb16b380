"""The Singer message writer: the SDK's msgspec bytes, records buffered until the next STATE."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_looker_query.writer import BufferedMsgSpecWriter


def _messages() -> list:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    return [
        SchemaMessage("s", {"type": "object", "properties": {"a": {"type": "string"}}}, ["a"]),
        RecordMessage("s", {"a": 'é\n"x"', "n": 1.5, "b": None}, time_extracted=moment),
        RecordMessage("s", {"a": "2"}, version=7),
        StateMessage({"bookmarks": {"s": {"replication_key_value": "2026-01-02"}}}),
    ]


@pytest.fixture
def stdout_on(monkeypatch):
    """Point sys.stdout at a file, buffered like a pipe's (closed after the test)."""
    opened: list[io.TextIOWrapper] = []

    def point(path) -> None:
        raw = io.FileIO(path, "w")
        wrapper = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 20))
        opened.append(wrapper)
        monkeypatch.setattr(sys, "stdout", wrapper)

    yield point
    monkeypatch.undo()
    for wrapper in opened:
        wrapper.close()


def test_bytes_are_the_sdk_msgspec_writers(tmp_path, stdout_on):
    out = tmp_path / "out.jsonl"
    stdout_on(out)
    writer = BufferedMsgSpecWriter()
    for message in _messages():
        writer.write_message(message)
    reference = MsgSpecWriter()
    expected = b"".join(bytes(reference.format_message(m)) for m in _messages())
    assert out.read_bytes() == expected


def test_records_wait_for_the_next_other_message(tmp_path, stdout_on):
    out = tmp_path / "out.jsonl"
    stdout_on(out)
    writer = BufferedMsgSpecWriter()
    schema, first, second, state = _messages()
    writer.write_message(schema)
    assert out.read_bytes().count(b"\n") == 1  # SCHEMA is flushed at once
    writer.write_message(first)
    writer.write_message(second)
    assert out.read_bytes().count(b"\n") == 1  # records are buffered
    writer.write_message(state)
    assert out.read_bytes().count(b"\n") == 4  # the STATE carries them out, and itself


def test_a_new_stdout_is_used_from_the_next_schema(tmp_path, stdout_on):
    writer = BufferedMsgSpecWriter()
    schema, first, second, state = _messages()
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    stdout_on(one)
    writer.write_message(schema)
    writer.write_message(first)
    stdout_on(two)
    writer.write_message(schema)  # flushes what `one` was owed, then writes to `two`
    writer.write_message(second)
    writer.write_message(state)
    assert one.read_bytes().count(b"\n") == 2
    assert two.read_bytes().count(b"\n") == 3
