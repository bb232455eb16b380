"""BATCH mode: the files hold exactly what RECORD mode emits, typed Parquet, STATE per batch.

Every comparison is against an independent computation: the RECORD-mode records of the same
configuration, and the emulator's own rows (hashed with hashlib here, not by the tap).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlparse
from urllib.request import urlopen

import boto3
import pytest

from tap_looker_query.tap import TapLookerQuery
from tests.e2e.services import start_gcs, start_moto
from tests.helpers import (
    REPO,
    by_id,
    config_for,
    expected_history,
    history_spec,
    run_tap,
    run_tap_process,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

STREAM = "query_history"
#: Hash one column, drop another (`__NULL__`); `history_status` is deselected in the catalog.
MAPS = {
    STREAM: {
        "user_name": "md5(user_name) if user_name is not None else None",
        "query_model": "__NULL__",
    }
}


def catalog_without(config, *props):
    """The discovered catalog with `props` deselected."""
    tap = TapLookerQuery(config=config, parse_env_config=False)
    try:
        catalog = tap.catalog_dict
    finally:
        tap.close()
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"][-1:] and meta["breadcrumb"][-1] in props:
                meta["metadata"]["selected"] = False
    return catalog


def batch_config(root, fmt, batch_size, compression=None):
    encoding = {"format": fmt}
    if compression:
        encoding["compression"] = compression
    return {
        "encoding": encoding,
        "storage": {"root": root, "prefix": "p-"},
        "batch_size": batch_size,
    }


def batches(run):
    return [m for m in run.messages if m["type"] == "BATCH"]


def local(url):
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(parsed.path)


def read_jsonl(url):
    path = local(url)
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.splitlines()]


def parquet_rows(url):
    """Rows of a Parquet file, its timestamps and dates as RECORD mode writes them."""
    rows = pq.read_table(local(url)).to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dt.datetime):
                assert value.utcoffset() == dt.timedelta(0)
                row[key] = value.isoformat()
            elif isinstance(value, dt.date):
                row[key] = value.isoformat()
    return rows


@pytest.mark.parametrize(
    ("fmt", "compression"), [("jsonl", "gzip"), ("jsonl", None), ("parquet", None)]
)
def test_batch_files_hold_the_record_mode_records_with_maps_and_selection(
    looker_emulator, tmp_path, fmt, compression
):
    config = config_for(looker_emulator, history_spec(), stream_maps=MAPS)
    catalog = catalog_without(config, "history_status")
    record_mode = run_tap(config, catalog=catalog)
    records = record_mode.records(STREAM)
    assert record_mode.exit_code == 0

    root = tmp_path.as_uri()
    config["batch_config"] = batch_config(root, fmt, 4_000, compression)
    batch_mode = run_tap(config, catalog=catalog)
    assert batch_mode.exit_code == 0
    assert not batch_mode.records(STREAM)
    messages = batches(batch_mode)
    assert len(messages) == -(-len(records) // 4_000) > 1
    rows = []
    for message in messages:
        assert message["stream"] == STREAM
        assert message["encoding"]["format"] == fmt
        assert message["encoding"].get("compression") == compression
        (url,) = message["manifest"]
        rows += parquet_rows(url) if fmt == "parquet" else read_jsonl(url)
    # The same records, in the same order, after parsing.
    assert rows == records
    # And they are masked as configured (checked against Looker's rows, hashed here).
    expected = by_id(expected_history(looker_emulator))
    assert len(expected) == len(rows)
    for got, raw in zip(by_id(rows), expected, strict=True):
        assert "history_status" not in got
        assert "query_model" not in got
        name = raw["user_name"]
        assert got["user_name"] == (
            None if name is None else hashlib.md5(name.encode()).hexdigest()
        )
        assert got["history_id"] == raw["history_id"]
    # The SCHEMA message describes the files.
    schema = batch_mode.schema(STREAM)["schema"]["properties"]
    assert set(schema) == set(rows[0])


def test_batch_applies_filters_and_new_properties_like_record_mode(looker_emulator, tmp_path):
    maps = {
        STREAM: {
            "__filter__": "history_runtime is not None and history_runtime > 5",
            "slow": "history_runtime > 20",
            "user": "user_name",
            "user_name": "__NULL__",
        }
    }
    config = config_for(looker_emulator, history_spec(), stream_maps=maps)
    records = run_tap(config).records(STREAM)
    config["batch_config"] = batch_config(tmp_path.as_uri(), "jsonl", 1_000)
    run = run_tap(config)
    rows = [row for m in batches(run) for row in read_jsonl(m["manifest"][0])]
    assert rows == records
    expected = [r for r in expected_history(looker_emulator) if (r["history_runtime"] or 0) > 5]
    assert len(rows) == len(expected) > 0
    assert {r["user"] for r in rows} == {r["user_name"] for r in expected}
    assert all("user_name" not in r and r["slow"] == (r["history_runtime"] > 20) for r in rows)


def test_parquet_files_share_the_schema_derived_types_across_all_null_columns(
    looker_emulator, tmp_path
):
    spec = history_spec(fields=[*history_spec()["fields"], "history.created_date"])
    # history_runtime is null in every row before the cut: the first files' column is all null.
    cut = "2026-09-01T00:00:00+00:00"
    maps = {
        STREAM: {
            "history_runtime": f"history_runtime if history_created_time >= '{cut}' else None",
            "id_int": "int(history_id)",  # a new property the SDK types as integer
        }
    }
    config = config_for(looker_emulator, spec, query_timezone="Europe/Paris", stream_maps=maps)
    records = run_tap(config).records(STREAM)
    config["batch_config"] = batch_config(tmp_path.as_uri(), "parquet", 3_000)
    run = run_tap(config)
    urls = [m["manifest"][0] for m in batches(run)]
    assert len(urls) > 3
    tables = [pq.read_table(local(url)) for url in urls]
    schema = run.schema(STREAM)["schema"]["properties"]
    want = {name: arrow_type_of(prop) for name, prop in schema.items()}
    assert set(want.values()) == {
        pa.int64(),
        pa.float64(),
        pa.timestamp("us", tz="UTC"),
        pa.date32(),
        pa.bool_(),
        pa.string(),
    }
    assert want["history_created_date"] == pa.date32()
    all_null = 0
    for table in tables:
        assert {f.name: f.type for f in table.schema} == want
        assert all(f.nullable for f in table.schema)
        all_null += table.column("history_runtime").null_count == table.num_rows
    assert all_null >= 1
    assert any(table.column("history_runtime").null_count < table.num_rows for table in tables)
    # The instants are the RECORD-mode instants (written with a +01:00/+02:00 offset there).
    got = [row for table in tables for row in table.to_pylist()]
    assert len(got) == len(records)
    for row, record in zip(got, records, strict=True):
        assert row["history_created_time"] == dt.datetime.fromisoformat(
            record["history_created_time"]
        )
        assert row["history_created_date"] == dt.date.fromisoformat(record["history_created_date"])
        assert row["history_runtime"] == record["history_runtime"]
        assert row["id_int"] == record["id_int"] == int(record["history_id"])


def arrow_type_of(prop):
    """The documented JSON Schema -> Arrow rule (README), written out here."""
    kinds = [
        k
        for k in ([prop["type"]] if isinstance(prop["type"], str) else prop["type"])
        if k != "null"
    ]
    (kind,) = kinds
    if kind == "string":
        return {"date-time": pa.timestamp("us", tz="UTC"), "date": pa.date32()}.get(
            prop.get("format"), pa.string()
        )
    return {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}[kind]


def test_state_after_each_batch_is_the_last_row_of_its_file(looker_emulator, tmp_path):
    config = config_for(looker_emulator, history_spec())
    config["batch_config"] = batch_config(tmp_path.as_uri(), "jsonl", 2_500, "gzip")
    run = run_tap(config)
    seen = 0
    for index, message in enumerate(run.messages):
        if message["type"] != "BATCH":
            continue
        seen += 1
        following = run.messages[index + 1]
        assert following["type"] == "STATE"
        rows = read_jsonl(message["manifest"][0])
        bookmark = following["value"]["bookmarks"][STREAM]["replication_key_value"]
        assert bookmark == rows[-1]["history_created_time"]
    assert seen > 3
    # No STATE runs ahead of the files: every STATE before a BATCH is at most the one after.
    announced = None
    for message in run.messages:
        if message["type"] == "BATCH":
            announced = read_jsonl(message["manifest"][0])[-1]["history_created_time"]
        elif message["type"] == "STATE":
            value = (
                message["value"].get("bookmarks", {}).get(STREAM, {}).get("replication_key_value")
            )
            assert value is None or (announced is not None and value <= announced)


def _files_rows(messages):
    return [row for m in messages if m["type"] == "BATCH" for row in read_jsonl(m["manifest"][0])]


def test_a_kill_between_batches_resumes_without_loss(looker_emulator, tmp_path):
    """SIGKILL after the second BATCH's STATE; the next run from that STATE fills the rest."""
    config = config_for(looker_emulator, history_spec(), window_hours=24 * 7)
    config["batch_config"] = batch_config(tmp_path.as_uri(), "jsonl", 500)
    expected = expected_history(looker_emulator)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config))
        first = []
        with subprocess.Popen(
            [sys.executable, "-m", "tap_looker_query", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env={**os.environ},
        ) as process:
            states = 0
            assert process.stdout is not None
            for line in process.stdout:
                message = json.loads(line)
                first.append(message)
                if message["type"] == "STATE" and first[-2]["type"] == "BATCH":
                    states += 1
                    if states == 2:
                        process.send_signal(signal.SIGKILL)
                        break
        assert process.returncode == -signal.SIGKILL
    state = next(m["value"] for m in reversed(first) if m["type"] == "STATE")
    bookmark = state["bookmarks"][STREAM]["replication_key_value"]
    before = _files_rows(first)
    assert before[-1]["history_created_time"] == bookmark
    assert len(before) == 1_000 < len(expected)
    second = run_tap(config, state=state)
    after = _files_rows(second.messages)
    # Nothing lost: every Looker row is in the files of one run or the other; the second run
    # starts at the bookmark (its second is repeated, as in RECORD mode).
    assert {r["history_id"] for r in before} | {r["history_id"] for r in after} == {
        r["history_id"] for r in expected
    }
    assert min(r["history_created_time"] for r in after) == bookmark


def test_batch_refuses_stream_maps_that_copy_a_stream(looker_emulator, tmp_path):
    maps = {"copy": {"__source__": STREAM}}
    config = config_for(looker_emulator, history_spec(), stream_maps=maps)
    config["batch_config"] = batch_config(tmp_path.as_uri(), "jsonl", 100)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config))
        process = subprocess.run(
            [sys.executable, "-m", "tap_looker_query", "--config", str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
    assert process.returncode == 1
    assert "BATCH mode writes one set of files per stream" in process.stderr
    assert '"type":"BATCH"' not in process.stdout.replace(" ", "")
    assert not list(tmp_path.iterdir())


# Storage roots other than file://: the S3 and GCS emulators the e2e tests use.


@pytest.fixture
def moto(tmp_path):
    service = start_moto(tmp_path)
    client = boto3.client(
        "s3",
        endpoint_url=service.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="batches")
    try:
        yield service, client
    finally:
        service.stop()


@pytest.fixture
def gcs(tmp_path):
    service = start_gcs(tmp_path, "batches")
    try:
        yield service
    finally:
        service.stop()


def _object_rows(data, url):
    if url.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pylist()
    if url.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_batch_files_go_to_s3(looker_emulator, moto, fmt):
    service, client = moto
    config = config_for(looker_emulator, history_spec())
    records = run_tap(config).records(STREAM)
    config["batch_config"] = batch_config(
        "s3://batches/tap", fmt, 5_000, "gzip" if fmt == "jsonl" else None
    )
    config["batch_config"]["storage"]["params"] = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": service.url, "region_name": "us-east-1"},
    }
    run = run_tap(config)
    assert run.exit_code == 0
    urls = [m["manifest"][0] for m in batches(run)]
    assert len(urls) > 1
    rows = []
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "s3" and parsed.netloc == "batches"
        assert parsed.path.startswith("/tap/p-")
        body = client.get_object(Bucket="batches", Key=parsed.path.lstrip("/"))["Body"].read()
        rows += _object_rows(body, url)
    listed = client.list_objects_v2(Bucket="batches")["Contents"]
    assert len(listed) == len(urls)  # no stray or unannounced objects
    if fmt == "parquet":
        for row in rows:
            row["history_created_time"] = row["history_created_time"].isoformat()
    assert rows == records


def test_batch_files_go_to_gcs(looker_emulator, gcs):
    config = config_for(looker_emulator, history_spec())
    records = run_tap(config).records(STREAM)
    config["batch_config"] = batch_config("gs://batches/tap", "jsonl", 5_000, "gzip")
    config["batch_config"]["storage"]["params"] = {"token": "anon", "project": "test"}
    # gcsfs's default (hierarchical-namespace) filesystem probes the bucket over gRPC, which the
    # emulator does not serve: the plain JSON-API filesystem, as against older gcsfs.
    env = {"STORAGE_EMULATOR_HOST": gcs.url, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    run = run_tap_process(config, env=env)
    assert run.exit_code == 0
    urls = [m["manifest"][0] for m in batches(run)]
    assert len(urls) > 1
    rows = []
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "gs" and parsed.netloc == "batches"
        name = quote(parsed.path.lstrip("/"), safe="")
        with urlopen(f"{gcs.url}/download/storage/v1/b/batches/o/{name}?alt=media") as response:
            rows += _object_rows(response.read(), url)
    assert rows == records
