"""Incremental replication through the emulator with the real looker-sdk: every row, once."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

import pytest

from tests.helpers import (
    REPO,
    START,
    by_id,
    config_for,
    expected_history,
    history_spec,
    run_tap,
)


def test_full_backfill_equals_lookers_rows_exactly(looker_emulator):
    run = run_tap(config_for(looker_emulator, history_spec()))
    records = run.records("query_history")
    expected = expected_history(looker_emulator)
    assert len(expected) > 10_000
    assert by_id(records) == by_id(expected)
    assert Counter(r["history_id"] for r in records).most_common(1)[0][1] == 1  # no duplicates
    created = [r["history_created_time"] for r in records]
    assert created == sorted(created)  # emitted in order: resumable
    assert run.bookmark("query_history") == created[-1]
    assert run.exit_code == 0


def test_second_run_gets_exactly_the_new_rows(looker_emulator):
    first = run_tap(config_for(looker_emulator, history_spec()))
    bookmark = first.bookmark("query_history")
    at_bookmark = {
        r["history_id"]
        for r in first.records("query_history")
        if r["history_created_time"] == bookmark
    }
    new_rows = [
        {
            "history.id": 900_000 + i,
            "history.created_time": f"2026-11-20 0{i}:00:00",
            "history.runtime": 1.5,
            "history.status": "complete",
            "history.is_single_query": "Yes",
        }
        for i in range(5)
    ]
    looker_emulator.insert_rows("system__activity", "history", new_rows)
    second = run_tap(config_for(looker_emulator, history_spec()), state=first.last_state)
    ids = Counter(r["history_id"] for r in second.records("query_history"))
    assert set(ids) == at_bookmark | {row["history.id"] for row in new_rows}
    assert max(ids.values()) == 1
    assert second.bookmark("query_history") == "2026-11-20T04:00:00+00:00"
    third = run_tap(config_for(looker_emulator, history_spec()), state=second.last_state)
    assert {r["history_id"] for r in third.records("query_history")} == {900_004}


@pytest.mark.parametrize(("limit", "since"), [("200", START), (30, "2026-10-18T00:00:00+00:00")])
def test_row_limit_smaller_than_windows_and_seconds_loses_nothing(looker_emulator, limit, since):
    """Bursts put hundreds of rows in one second: more than `limit` in a single second."""
    run = run_tap(config_for(looker_emulator, history_spec(limit=limit), start_date=since))
    records = run.records("query_history")
    expected = expected_history(looker_emulator, since=since)
    assert by_id(records) == by_id(expected)
    assert max(Counter(r["history_id"] for r in records).values()) == 1
    busiest = Counter(r["history_created_time"] for r in records).most_common(1)[0][1]
    assert busiest > int(limit)
    run_requests = [r for r in looker_emulator.requests if r.path.endswith("/queries/run/json")]
    assert any(r.query.get("limit") == "-1" for r in run_requests)  # a crowded second read whole


def test_csv_and_json_produce_identical_records(looker_emulator):
    csv_spec = history_spec(
        name="history_csv",
        metadata={
            "datetime": "history.created_time",
            "primary_keys": ["history.id"],
            "result_format": "csv",
        },
    )
    run = run_tap(config_for(looker_emulator, history_spec(), csv_spec))
    assert run.records("history_csv") == run.records("query_history")
    assert len(run.records("history_csv")) > 10_000


def test_query_timezone_shapes_windows_and_values(looker_emulator):
    run = run_tap(config_for(looker_emulator, history_spec(), query_timezone="America/New_York"))
    records = run.records("query_history")
    utc = {r["history_id"]: r["history_created_time"] for r in expected_history(looker_emulator)}
    assert len(records) == len(utc)
    for record in records[:500]:
        local = dt.datetime.fromisoformat(record["history_created_time"])
        assert local.utcoffset() in {dt.timedelta(hours=-4), dt.timedelta(hours=-5)}
        assert local == dt.datetime.fromisoformat(utc[record["history_id"]])
    bodies = [r.body for r in looker_emulator.requests if r.path.endswith("/queries/run/json")]
    assert all(body["query_timezone"] == "America/New_York" for body in bodies)


def test_windows_are_half_open_sorted_and_always_send_the_time_zone(looker_emulator):
    run_tap(config_for(looker_emulator, history_spec(filters={"history.status": "complete"})))
    bodies = [r.body for r in looker_emulator.requests if r.path.endswith("/queries/run/json")]
    assert len(bodies) > 100  # ~150 daily windows from 2026-07-04 to now
    windows = sorted(tuple(b["filters"]["history.created_time"].split(" to ")) for b in bodies)
    starts = {start for start, _ in windows}
    ends = sorted(end for _, end in windows)
    assert all(end in starts for end in ends[:-1])  # contiguous: each window ends where one starts
    assert all(start < end for start, end in windows)
    for body in bodies:
        assert body["sorts"][0] == "history.created_time"
        assert body["filters"]["history.status"] == "complete"
        assert body["query_timezone"] == "UTC"


def test_full_table_spec_reads_all_rows(looker_emulator):
    spec = {
        "name": "users",
        "model": "system__activity",
        "explore": "user",
        "fields": ["user.id", "user.name", "user.is_looker"],
        "sorts": ["user.id"],
    }
    run = run_tap(config_for(looker_emulator, spec))
    expected = looker_emulator.query_rows(
        "system__activity", "user", spec["fields"], sorts=["user.id"], limit="-1"
    )
    assert len(run.records("users")) == len(expected)
    assert run.records("users")[0]["user_is_looker"] in {True, False, None}
    [body] = [r.body for r in looker_emulator.requests if r.path.endswith("/queries/run/json")]
    assert body["limit"] == "-1"


def test_manual_backfill_runs_the_given_filter_and_keeps_the_bookmark(looker_emulator):
    first = run_tap(config_for(looker_emulator, history_spec()))
    bookmark = first.bookmark("query_history")
    backfill = history_spec(
        filters={"history.created_time": "2026-08-01 00:00:00 to 2026-08-02 00:00:00"}
    )
    run = run_tap(config_for(looker_emulator, backfill), state=first.last_state)
    records = run.records("query_history")
    assert records and all(r["history_created_time"].startswith("2026-08-01") for r in records)
    assert run.bookmark("query_history") == bookmark


def test_looker_ingestion_readme_query_file_runs_unchanged(looker_emulator, monkeypatch):
    """The example file from looker_ingestion 1.4.2's README (its two specs share a name there;
    the second is renamed), on the legacy i__looker model, csv and json."""
    config = {
        "base_url": looker_emulator.base_url,
        "client_id": looker_emulator.client_id,
        "client_secret": looker_emulator.client_secret,
        "start_date": "2026-10-28T00:00:00Z",
        "queries_file": "tests/data/looker_ingestion_readme_queries.json",
    }
    monkeypatch.chdir(REPO)  # queries_file is relative to the working directory
    run = run_tap(config)
    assert run.exit_code == 0
    as_csv, as_json = run.records("query_history"), run.records("query_history_json")
    assert as_csv == as_json
    expected = looker_emulator.query_rows(
        "i__looker",
        "history",
        ["history.id"],
        filters={
            "query.model": "-EMPTY",
            "history.runtime": "NOT NULL",
            "user.is_looker": "No",
            "history.created_time": "2026-10-28 00:00:00 to 2027-01-01 00:00:00",
        },
        limit="-1",
    )
    assert sorted(r["history_id"] for r in as_csv) == sorted(r["history.id"] for r in expected)
    assert len(as_csv) > 100
    assert run.schema("query_history")["schema"]["properties"]["space_id"]["type"] == [
        "number",
        "null",
    ]


def test_the_next_stream_starts_its_queries_while_the_previous_one_emits(looker_emulator, caplog):
    events = {
        "name": "events",
        "model": "system__activity",
        "explore": "event",
        "fields": ["event.id", "event.created_time", "event.name"],
        "metadata": {"datetime": "event.created_time", "primary_keys": ["event.id"]},
    }
    with caplog.at_level(logging.INFO):
        run = run_tap(
            config_for(looker_emulator, history_spec(), events, start_date="2026-10-01T00:00:00Z")
        )
    messages = [r.getMessage() for r in caplog.records]
    synced = [m.split("'")[1] for m in messages if m.startswith("Beginning sync of")]
    assert len(synced) == 2
    assert any(m.startswith(f"{synced[1]}: starting its first 4 queries while") for m in messages)
    for stream, key in (
        ("query_history", "history_created_time"),
        ("events", "event_created_time"),
    ):
        values = [r[key] for r in run.records(stream)]
        assert values == sorted(values)
        assert run.bookmark(stream) == values[-1]
    want = looker_emulator.query_rows(
        "system__activity",
        "event",
        ["event.id"],
        filters={"event.created_time": "2026-10-01 00:00:00 to 2027-01-01 00:00:00"},
        limit="-1",
    )
    assert sorted(r["event_id"] for r in run.records("events")) == sorted(
        r["event.id"] for r in want
    )


def test_a_failed_manual_backfill_keeps_the_bookmark(looker_emulator):
    first = run_tap(config_for(looker_emulator, history_spec()))
    bookmark = first.bookmark("query_history")
    backfill = history_spec(
        filters={"history.created_time": "2026-08-01 00:00:00 to 2026-09-01 00:00:00"}
    )
    # Cut after the emulator's first two 64 KiB chunks: rows arrive, then the body breaks off.
    looker_emulator.faults.truncate_next(count=100, path="/queries/run", after_bytes=150_000)
    run = run_tap(config_for(looker_emulator, backfill, max_retry_wait=0), state=first.last_state)
    assert run.exit_code == 1
    assert run.records("query_history")  # rows were emitted before it broke off
    assert all(
        state["bookmarks"]["query_history"]["replication_key_value"] == bookmark
        for state in run.states
    )
