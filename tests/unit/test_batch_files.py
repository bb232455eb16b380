"""The BATCH file writer on its own: Arrow types from JSON schemas, odd values, setup errors."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tap_looker_query.engine.batch import BatchSetupError, BatchTarget, BatchWriter

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SCHEMA = {
    "properties": {
        "at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "n": {"type": ["integer", "null"]},
        "x": {"type": ["number", "null"]},
        "ok": {"type": ["boolean", "null"]},
        "s": {"type": ["string", "null"]},
    }
}


def target(tmp_path, fmt="parquet", batch_size=3, *, gz=False):
    return BatchTarget(tmp_path.as_uri(), "t-", fmt, gz, batch_size, {})


def write_all(writer, records):
    urls = []
    while records:
        take, records = records[: writer.room], records[writer.room :]
        writer.add(take)
        if writer.room == 0:
            urls.append(writer.finish())
    last = writer.finish()
    return [*urls, *([last] if last else [])]


def test_parquet_types_come_from_the_schema_not_the_values(tmp_path):
    records = [
        {
            "at": "2026-01-01T01:00:00+01:00",
            "day": "2026-01-01",
            "n": 1,
            "x": 2,
            "ok": True,
            "s": "a",
        },
        {"at": None, "day": None, "n": None, "x": 1.5, "ok": None, "s": None},
        {"at": None, "day": None, "n": None, "x": None, "ok": None, "s": None},
        {"at": None, "day": None, "n": None, "x": None, "ok": None, "s": None},
    ]
    urls = write_all(BatchWriter(target(tmp_path), "s", SCHEMA), records)
    assert len(urls) == 2
    for url in urls:
        schema = pq.read_schema(urlparse(url).path)
        assert [(f.name, f.type, f.nullable) for f in schema] == [
            ("at", pa.timestamp("us", tz="UTC"), True),
            ("day", pa.date32(), True),
            ("n", pa.int64(), True),
            ("x", pa.float64(), True),
            ("ok", pa.bool_(), True),
            ("s", pa.string(), True),
        ]
    first = pq.read_table(urlparse(urls[0]).path).to_pylist()[0]
    assert first["at"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the instant, in UTC
    assert first["day"] == dt.date(2026, 1, 1)
    assert first["x"] == 2.0
    assert pq.read_table(urlparse(urls[1]).path).num_rows == 1


def test_a_string_column_holding_objects_gets_their_json(tmp_path):
    records = [{"s": {"k": [1, 2]}, "n": 3}, {"s": "plain", "n": None}]
    (url,) = write_all(BatchWriter(target(tmp_path, batch_size=10), "s", SCHEMA), records)
    rows = pq.read_table(urlparse(url).path).to_pylist()
    assert [row["s"] for row in rows] == ['{"k":[1,2]}', "plain"]
    assert [row["n"] for row in rows] == [3, None]


def test_jsonl_files_hold_the_records_and_no_empty_file_is_written(tmp_path):
    records = [{"s": str(i), "n": i} for i in range(5)]
    writer = BatchWriter(target(tmp_path, "jsonl", 5, gz=True), "s", SCHEMA)
    (url,) = write_all(writer, records)
    assert writer.finish() is None
    path = Path(urlparse(url).path)
    assert path.name.startswith("t-s-") and path.name.endswith("-1.jsonl.gz")
    assert [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()] == records
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("fmt", "gz", "root", "batch_size", "problem"),
    [
        ("csv", False, "/tmp", 10, "format 'csv' is not supported"),
        ("parquet", True, "/tmp", 10, "applies to jsonl only"),
        ("jsonl", False, "/tmp", 0, "batch_size must be at least 1"),
        ("jsonl", False, "nosuchfs://bucket/x", 10, "cannot write there"),
    ],
)
def test_setup_problems_are_named_before_anything_is_written(fmt, gz, root, batch_size, problem):
    with pytest.raises(BatchSetupError, match=problem):
        BatchTarget(root, "", fmt, gz, batch_size, {}).check()
