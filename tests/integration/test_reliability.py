"""The fault matrix: each of Looker's rough edges either costs nothing (retried) or fails the
stream with a clear message and a STATE from which a rerun, fault cleared, misses nothing."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from looker_emulator import LookerEmulator
from tests.helpers import (
    REPO,
    by_id,
    config_for,
    expected_history,
    history_spec,
    run_tap,
    run_tap_process,
)

SINCE = "2026-10-20T00:00:00+00:00"  # ~37 daily windows, a few thousand rows, bursts included
FAST = {"start_date": SINCE, "max_retry_wait": 0}


def config(emulator, *specs, **settings):
    return config_for(emulator, *(specs or [history_spec()]), **{**FAST, **settings})


def expected(emulator):
    return by_id(expected_history(emulator, since=SINCE))


def assert_complete(run, emulator, stream="query_history"):
    assert run.exit_code == 0, run.failures
    records = run.records(stream)
    assert max(Counter(r["history_id"] for r in records).values()) == 1
    assert by_id(records) == expected(emulator)


def assert_resumes_completely(first, emulator, config_):
    """A failed run's STATE is safe: a rerun from it, fault cleared, completes the data."""
    assert first.exit_code != 0
    emulator.faults.reset()
    second = run_tap(config_, state=first.last_state)
    assert second.exit_code == 0, second.failures
    union = {
        r["history_id"]: r for r in first.records("query_history") + second.records("query_history")
    }
    assert by_id(union.values()) == expected(emulator)
    bookmark = first.bookmark("query_history")
    if bookmark:  # the STATE never claims a row that was not emitted
        assert bookmark <= max(r["history_created_time"] for r in first.records("query_history"))


@pytest.mark.parametrize(
    ("status", "html"),
    [(429, False), (500, False), (502, True), (503, False), (504, True)],
)
def test_transient_statuses_are_retried(looker_emulator, caplog, status, html):
    looker_emulator.faults.fail_next(status, count=3, path="/queries/run", html=html)
    # A 504 on a run is retried inline in sync mode; auto moves it to a query task at once
    # (tests/integration/test_gateway_timeout.py).
    mode = "sync" if status == 504 else "auto"
    with caplog.at_level(logging.WARNING):
        run = run_tap(config(looker_emulator, query_mode=mode))
    assert_complete(run, looker_emulator)
    retries = [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]
    assert len(retries) == 3
    assert f"HTTP {status}" in retries[0]


def test_retry_after_is_honoured(looker_emulator):
    looker_emulator.faults.fail_next(429, count=1, path="/queries/run", retry_after=2)
    began = time.monotonic()
    run = run_tap(config(looker_emulator, max_retry_wait=60, start_date="2026-10-31T00:00:00Z"))
    assert run.exit_code == 0
    assert time.monotonic() - began >= 2


def test_login_and_metadata_calls_are_retried_too(looker_emulator):
    looker_emulator.faults.fail_next(503, count=2, path="/login")
    looker_emulator.faults.fail_next(502, count=2, path="/lookml_models", html=True)
    assert_complete(run_tap(config(looker_emulator)), looker_emulator)


def test_a_persistent_error_fails_the_window_with_a_clear_message(looker_emulator):
    looker_emulator.faults.fail_next(503, count=1000, path="/queries/run")
    first = run_tap(config(looker_emulator, max_retries=2))
    [reason] = first.failures.values()
    assert "query 'query_history', window [2026-10-" in reason
    assert "HTTP 503" in reason
    assert not first.records("query_history")
    assert_resumes_completely(first, looker_emulator, config(looker_emulator))


@pytest.mark.parametrize("fault", ["drop", "truncate"])
def test_dropped_connections_and_cut_off_bodies_lose_and_repeat_nothing(looker_emulator, fault):
    if fault == "drop":
        looker_emulator.faults.drop_next(count=3, path="/queries/run")
    else:
        looker_emulator.faults.truncate_next(count=3, path="/queries/run", after_bytes=3000)
    assert_complete(run_tap(config(looker_emulator)), looker_emulator)


@pytest.mark.parametrize("result_format", ["json", "csv"])
def test_a_full_table_query_cut_off_mid_body_is_rerun_without_repeats(
    looker_emulator, result_format
):
    """No datetime, one query: after a cut the same query runs again and the rows already
    emitted (a prefix, in the query's sort order) are skipped, batch by batch."""
    looker_emulator.synthetic_rows = 6_000  # ~4 MB of json: many batches before the cut
    spec = {
        "name": "synthetic_full",
        "model": "synthetic",
        "explore": "synthetic",
        "fields": ["synthetic.id", "synthetic.name", "synthetic.amount"],
        "sorts": ["synthetic.id"],
        "limit": -1,
        "metadata": {"primary_keys": ["synthetic.id"], "result_format": result_format},
    }
    looker_emulator.faults.truncate_next(count=2, path="/queries/run", after_bytes=150_000)
    run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    ids = [r["synthetic_id"] for r in run.records("synthetic_full")]
    assert ids == list(range(1, 6_001))


def test_a_revoked_token_logs_in_again(looker_emulator):
    def revoke(tap):
        _ = tap.streams  # discovery logs in
        looker_emulator.faults.revoke_tokens()

    run = run_tap(config(looker_emulator), before_sync=revoke)
    assert_complete(run, looker_emulator)
    logins = [r for r in looker_emulator.requests if r.path.endswith("/login")]
    assert len(logins) == 2


def test_a_query_past_query_timeout_is_killed_and_its_window_split(looker_emulator):
    looker_emulator.faults.slow_query(6, count=2)  # the inline run, then the task
    run = run_tap(config(looker_emulator, timeout=1, query_timeout=2, max_concurrent_queries=1))
    assert_complete(run, looker_emulator)
    paths = [(r.method, r.path) for r in looker_emulator.requests]
    assert ("POST", "/api/4.0/query_tasks") in paths
    assert any(m == "DELETE" and p.startswith("/api/4.0/running_queries/") for m, p in paths)


def test_async_mode_survives_expired_before_complete(looker_emulator):
    looker_emulator.faults.task_expired_before_complete = 3
    run = run_tap(config(looker_emulator, query_mode="async", start_date="2026-10-28T00:00:00Z"))
    assert run.exit_code == 0, run.failures
    tasks = [r for r in looker_emulator.requests if r.path == "/api/4.0/query_tasks"]
    assert len(tasks) >= 4


def test_looker_error_in_a_200_fails_the_window_and_state_stays_before_it(looker_emulator):
    looker_emulator.faults.looker_error_on_query(5, message="Table 'history' is locked")
    first = run_tap(config(looker_emulator, max_concurrent_queries=1))
    [reason] = first.failures.values()
    assert "Looker reported an error: Table 'history' is locked" in reason
    assert "window [" in reason
    assert_resumes_completely(first, looker_emulator, config(looker_emulator))


@pytest.mark.parametrize("kind", ["html", "invalid_json", "empty"])
def test_malformed_bodies_are_retried_not_loaded(looker_emulator, kind):
    looker_emulator.faults.malform_next(kind, count=2)
    assert_complete(run_tap(config(looker_emulator)), looker_emulator)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("missing_field", "lacks the selected field"),
        ("wrong_type", "value of the wrong type"),
        ("bad_datetime", "expected a datetime"),
    ],
)
def test_rows_that_do_not_match_the_schema_fail_the_window(looker_emulator, kind, text):
    looker_emulator.faults.malform_next(kind, count=1)
    first = run_tap(config(looker_emulator, max_concurrent_queries=1))
    [reason] = first.failures.values()
    assert text in reason
    assert_resumes_completely(first, looker_emulator, config(looker_emulator))


def test_a_failing_stream_stops_and_the_others_run(looker_emulator):
    broken = history_spec(
        name="history_csv", metadata={"datetime": "history.created_time", "result_format": "csv"}
    )
    looker_emulator.faults.fail_next(400, count=1000, path="/queries/run/csv")
    run = run_tap_process(config(looker_emulator, history_spec(), broken))
    assert run.exit_code == 1
    assert len(run.records("query_history")) == len(expected(looker_emulator))
    assert not run.records("history_csv")
    tail = run.stderr.strip().splitlines()[-3:]
    assert "1 stream(s) failed:" in tail[-2]
    assert "history_csv:" in tail[-1]
    assert "HTTP 400" in tail[-1]


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_killed_mid_backfill_then_resumed_loses_nothing(looker_emulator, tmp_path, unbuffered):
    """Records are buffered until the STATE that covers them, with Python buffered or not."""
    looker_emulator.faults.query_latency = 0.15
    config_ = config(looker_emulator, start_date="2026-09-01T00:00:00Z", max_concurrent_queries=1)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config_))
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_looker_query", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": unbuffered},
    )
    lines = []
    states = 0
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        states += '"type":"STATE"' in line
        if states >= 15:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    process.stdout.close()
    messages = [json.loads(line) for line in lines if line.startswith('{"type"')]
    state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    before = [m["record"] for m in messages if m["type"] == "RECORD"]
    looker_emulator.faults.reset()
    resumed = run_tap(config_, state=state)
    union = {r["history_id"] for r in before} | {
        r["history_id"] for r in resumed.records("query_history")
    }
    want = expected_history(looker_emulator, since="2026-09-01T00:00:00+00:00")
    assert union == {r["history_id"] for r in want}
    repeated = len(before) + len(resumed.records("query_history")) - len(union)
    per_day = Counter(r["history_created_time"][:10] for r in want)
    assert repeated <= max(per_day.values())  # at most the rows of the interrupted window


def test_two_taps_with_different_lookers_in_one_process(looker_emulator):
    with LookerEmulator(client_id="other-id", client_secret="other-secret") as other:
        first = run_tap(config(looker_emulator))
        second = run_tap(config(other))
        again = run_tap(config(looker_emulator))
    assert_complete(first, looker_emulator)
    assert_complete(second, other)
    assert_complete(again, looker_emulator)
    assert any(
        r.path.endswith("/logout") for r in looker_emulator.requests
    )  # logged out at the end
