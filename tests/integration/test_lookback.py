"""Lookback: each incremental run re-reads a span before the bookmark (rows that changed or
arrived late), and the bookmark still only moves forward. Through the emulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

from tests.helpers import REPO, config_for, history_spec, run_tap

SINCE = "2026-11-19T00:00:00+00:00"
RUNNING = 910_000


def row(history_id, created, status="complete", runtime=1.5):
    return {
        "history.id": history_id,
        "history.created_time": created,
        "history.runtime": runtime,
        "history.status": status,
        "history.is_single_query": "Yes",
    }


def spec(lookback=120, **metadata):
    return history_spec(
        metadata={
            "datetime": "history.created_time",
            "primary_keys": ["history.id"],
            "lookback_minutes": lookback,
            **metadata,
        }
    )


def instant(value):
    return dt.datetime.fromisoformat(value)


def first_run(emulator, **settings):
    """A query still running at 10:00 and a later one at 10:30 (the bookmark)."""
    emulator.insert_rows(
        "system__activity",
        "history",
        [
            row(RUNNING, "2026-11-20 10:00:00", status="running", runtime=None),
            row(RUNNING + 1, "2026-11-20 10:30:00"),
        ],
    )
    first = run_tap(config_for(emulator, spec(), start_date=SINCE, **settings))
    assert first.exit_code == 0, first.failures
    [running] = [r for r in first.records("query_history") if r["history_id"] == RUNNING]
    assert (running["history_status"], running["history_runtime"]) == ("running", None)
    assert first.bookmark("query_history") == "2026-11-20T10:30:00+00:00"
    return first


def between_runs(emulator):
    """The query completes; a late row lands inside the span, one older than it."""
    emulator.insert_rows(
        "system__activity",
        "history",
        [
            row(RUNNING, "2026-11-20 10:00:00", status="complete", runtime=42.5),
            row(RUNNING + 2, "2026-11-20 09:15:00"),  # inside 08:30..10:30
            row(RUNNING + 3, "2026-11-20 07:00:00"),  # older than the span
        ],
    )


def test_second_run_rereads_the_span_with_current_values_and_late_rows(looker_emulator):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    second = run_tap(config_for(looker_emulator, spec(), start_date=SINCE), state=first.last_state)
    assert second.exit_code == 0, second.failures
    records = {r["history_id"]: r for r in second.records("query_history")}
    assert (records[RUNNING]["history_status"], records[RUNNING]["history_runtime"]) == (
        "complete",
        42.5,
    )
    assert RUNNING + 2 in records  # arrived late, inside the lookback span
    assert RUNNING + 3 not in records  # older than the span: not re-read
    span_start = instant("2026-11-20T08:30:00+00:00")
    assert all(instant(r["history_created_time"]) >= span_start for r in records.values())
    # STATE never goes back, not even while the span is re-read.
    bookmark = instant(first.bookmark("query_history"))
    for state in second.states:
        value = state["bookmarks"]["query_history"]["replication_key_value"]
        assert instant(value) >= bookmark
    assert second.bookmark("query_history") == first.bookmark("query_history")


def test_the_setting_applies_and_a_spec_without_keys_is_warned_about(looker_emulator, caplog):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    keyless = history_spec(name="keyless", metadata={"datetime": "history.created_time"})
    config = config_for(looker_emulator, keyless, start_date=SINCE, lookback_minutes=120)
    state = {"bookmarks": {"keyless": first.last_state["bookmarks"]["query_history"]}}
    second = run_tap(config, state=state)
    ids = {r["history_id"] for r in second.records("keyless")}
    assert {RUNNING, RUNNING + 2} <= ids
    assert RUNNING + 3 not in ids
    assert any(
        "query 'keyless'" in r.getMessage() and "no metadata.primary_keys" in r.getMessage()
        for r in caplog.records
    )


def test_no_lookback_reads_from_the_bookmark(looker_emulator):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    second = run_tap(
        config_for(looker_emulator, spec(lookback=0), start_date=SINCE), state=first.last_state
    )
    ids = {r["history_id"] for r in second.records("query_history")}
    assert ids == {RUNNING + 1}  # only the bookmark's own second, read again


def test_lookback_never_starts_before_start_date(looker_emulator):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    later = "2026-11-20T09:30:00+00:00"
    second = run_tap(config_for(looker_emulator, spec(), start_date=later), state=first.last_state)
    ids = {r["history_id"] for r in second.records("query_history")}
    assert RUNNING in ids
    assert RUNNING + 2 not in ids  # 09:15 is before start_date


def test_killed_inside_the_span_then_rerun_loses_nothing(looker_emulator, tmp_path):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    looker_emulator.faults.query_latency = 0.3
    hourly = config_for(
        looker_emulator,
        spec(lookback=360),
        start_date=SINCE,
        window_hours=1,
        max_concurrent_queries=1,
    )
    (tmp_path / "config.json").write_text(json.dumps(hourly))
    (tmp_path / "state.json").write_text(json.dumps(first.last_state))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_looker_query",
            "--config",
            str(tmp_path / "config.json"),
            "--state",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=os.environ,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if '"type":"RECORD"' in line:  # the first row of the span (07:00): kill it there
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    process.stdout.close()
    messages = [json.loads(line) for line in lines if line.startswith('{"type"')]
    killed_state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    value = killed_state["bookmarks"]["query_history"]["replication_key_value"]
    assert instant(value) >= instant(first.bookmark("query_history"))
    before = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert [r["history_id"] for r in before] == [RUNNING + 3]  # killed inside the span
    looker_emulator.faults.reset()
    rerun = run_tap(
        config_for(looker_emulator, spec(lookback=360), start_date=SINCE), state=killed_state
    )
    records = {r["history_id"]: r for r in rerun.records("query_history")}
    assert records[RUNNING]["history_status"] == "complete"
    assert {RUNNING + 1, RUNNING + 2, RUNNING + 3} <= set(records)


def test_a_bookmark_written_with_another_offset_resumes(looker_emulator):
    first = first_run(looker_emulator)
    between_runs(looker_emulator)
    state = json.loads(json.dumps(first.last_state))
    # The same instant as the bookmark (10:30 UTC), as a run in Berlin's winter time wrote it.
    state["bookmarks"]["query_history"]["replication_key_value"] = "2026-11-20T11:30:00+01:00"
    second = run_tap(config_for(looker_emulator, spec(lookback=0), start_date=SINCE), state=state)
    assert second.exit_code == 0, second.failures
    assert {r["history_id"] for r in second.records("query_history")} == {RUNNING + 1}
    assert second.bookmark("query_history") == "2026-11-20T10:30:00+00:00"
