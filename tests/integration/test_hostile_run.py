"""Hostile input and signals (issue 12): each test names the defect of the hostile-test report
it reproduces (D4, D5, D6, D8, D10, D11, D13, D14); each failed before its fix."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from tap_looker_query.engine.plan import looker_time
from tap_looker_query.looker.transport import ClientSettings, ClientStats, Retrier
from tests.helpers import (
    REPO,
    config_for,
    expected_history,
    history_spec,
    run_tap,
    run_tap_process,
)

SINCE = "2026-10-28T00:00:00+00:00"


def bookmark_state(stream, value, key="history_created_time"):
    return {"bookmarks": {stream: {"replication_key": key, "replication_key_value": value}}}


def no_traceback(run):
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


# D4: a manual backfill of a later range must not move the bookmark past rows never read


def test_d4_a_backfill_of_a_later_range_leaves_the_bookmark(looker_emulator):
    state = bookmark_state("query_history", "2026-10-29T00:00:00+00:00")
    backfill = history_spec(
        filters={"history.created_time": "2026-10-31 00:00:00 to 2026-11-01 00:00:00"}
    )
    run = run_tap(config_for(looker_emulator, backfill, start_date=SINCE), state=state)
    assert run.exit_code == 0, run.failures
    assert run.records("query_history")
    assert run.bookmark("query_history") == "2026-10-29T00:00:00+00:00"
    again = run_tap(
        config_for(looker_emulator, history_spec(), start_date=SINCE), state=run.last_state
    )
    want = expected_history(looker_emulator, since="2026-10-29T00:00:00+00:00")
    assert {r["history_id"] for r in again.records("query_history")} == {
        r["history_id"] for r in want
    }


# D5: bookmarks compare as instants; a changed zone or datetime field does not wedge the stream


def test_d5_a_bookmark_written_in_kolkata_resumes_in_utc(looker_emulator):
    first = run_tap(
        config_for(looker_emulator, history_spec(), start_date=SINCE, query_timezone="Asia/Kolkata")
    )
    assert first.bookmark("query_history").endswith("+05:30")
    for _ in range(2):  # it used to fail on every later run
        again = run_tap(
            config_for(looker_emulator, history_spec(), start_date=SINCE), state=first.last_state
        )
        assert again.exit_code == 0, again.failures
        assert again.bookmark("query_history").endswith("+00:00")


def test_d5_a_changed_datetime_field_starts_from_start_date(looker_emulator):
    state = bookmark_state("query_history", "2026-10-31T00:00:00+00:00", key="history_other_time")
    run = run_tap(config_for(looker_emulator, history_spec(), start_date=SINCE), state=state)
    assert run.exit_code == 0, run.failures
    assert len(run.records("query_history")) == len(expected_history(looker_emulator, since=SINCE))


# D6: one bad stream stops alone, whatever raised; bad settings are refused before data moves


def test_d6_a_garbage_bookmark_fails_its_stream_and_the_others_run(looker_emulator):
    users = {
        "name": "users",
        "model": "system__activity",
        "explore": "user",
        "fields": ["user.id", "user.name"],
        "limit": -1,
    }
    events = {
        "name": "events",
        "model": "system__activity",
        "explore": "event",
        "fields": ["event.id", "event.created_time"],
        "metadata": {"datetime": "event.created_time"},
    }
    config = config_for(looker_emulator, users, history_spec(), events, start_date=SINCE)
    run = run_tap_process(config, state=bookmark_state("query_history", "garbage"))
    no_traceback(run)
    assert run.exit_code == 1
    assert run.records("users")
    assert run.records("events")
    assert not run.records("query_history")
    assert "bookmark 'garbage' is not a date-time" in run.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"start_date": "yesterday"}, "start_date"),
        ({"window_hours": -5}, "window_hours"),
        ({"window_hours": 10**9}, "window_hours"),
        ({"max_retry_wait": -1}, "max_retry_wait"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 10**12}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_concurrent_queries": 0}, "max_concurrent_queries"),
        ({"query_timeout": -5}, "query_timeout"),
    ],
)
def test_d6_d10_settings_out_of_range_are_refused_before_data_moves(
    looker_emulator, settings, message
):
    run = run_tap_process(config_for(looker_emulator, history_spec(), **settings))
    no_traceback(run)
    assert run.exit_code != 0
    assert not run.all_records
    assert message in run.stderr


def test_d6_huge_metadata_numbers_are_refused_by_name(looker_emulator):
    spec = history_spec(
        metadata={"datetime": "history.created_time", "default_days": 10**7, "window_hours": 10**9}
    )
    run = run_tap_process(config_for(looker_emulator, spec, start_date=None))
    no_traceback(run)
    assert run.exit_code != 0
    assert "metadata.default_days" in run.stderr
    assert "metadata.window_hours" in run.stderr


# D8: SIGTERM and SIGINT stop within seconds, non-zero, with the STATE of what was emitted


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_d8_a_signal_stops_fast_with_the_final_state_and_a_non_zero_exit(
    looker_emulator, tmp_path, signum
):
    looker_emulator.faults.query_latency = 20  # every query is still running at the signal
    config = config_for(looker_emulator, history_spec(), start_date=SINCE, timeout=60)
    (tmp_path / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_looker_query", "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ,
    )
    time.sleep(4)
    requests_before = len(looker_emulator.requests)
    sent = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    took = time.monotonic() - sent
    assert process.returncode == 128 + signum, err[-2000:]
    assert took < 8
    assert "Traceback" not in err
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert messages[-1]["type"] == "STATE"
    runs = [r for r in looker_emulator.requests[requests_before:] if "/queries/run" in r.path]
    assert len(runs) <= 1  # nothing new is started after the signal (one may be in the air)


# D11: retries after Retry-After are spread out


def test_d11_retries_after_retry_after_are_jittered():
    settings = ClientSettings(
        base_url="http://127.0.0.1:1",
        client_id="id",
        client_secret="secret",
        verify_ssl=True,
        timeout=10,
        max_retries=5,
        max_retry_wait=60.0,
        max_concurrent_queries=4,
        query_mode="auto",
        query_timeout=600.0,
    )
    waits: list[float] = []
    retrier = Retrier(settings, logging.getLogger("test"), ClientStats(), sleep=waits.append)
    for _ in range(20):
        retrier.wait(2, "429", retry_after=1.0)
    assert min(waits) >= 1.0
    assert len(set(waits)) > 10  # not all at the same moment


# D13: unreadable state and catalog files give one line, no traceback


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        ("--state", "not json", "not JSON"),
        ("--state", "", "not JSON"),
        ("--state", '{"bookmarks": []}', "'bookmarks' must map"),
        ("--state", '{"bookmarks": {"s": "x"}}', "'bookmarks' must map"),
        ("--catalog", "not json", "not JSON"),
        ("--catalog", "[]", "must be a JSON object"),
    ],
)
def test_d13_unreadable_state_or_catalog(looker_emulator, tmp_path, flag, content, message):
    path = tmp_path / "input.json"
    path.write_text(content)
    run = run_tap_process(config_for(looker_emulator, history_spec()), flag, str(path))
    no_traceback(run)
    assert run.exit_code == 1
    assert message in run.stderr


def test_d10_a_boolean_from_the_environment_that_is_neither(looker_emulator):
    env = {
        "TAP_LOOKER_QUERY_BASE_URL": looker_emulator.base_url,
        "TAP_LOOKER_QUERY_CLIENT_ID": looker_emulator.client_id,
        "TAP_LOOKER_QUERY_CLIENT_SECRET": looker_emulator.client_secret,
        "TAP_LOOKER_QUERY_QUERIES": json.dumps([history_spec()]),
        "TAP_LOOKER_QUERY_VERIFY_SSL": "maybe",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tap_looker_query", "--config", "ENV"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "TAP_LOOKER_QUERY_VERIFY_SSL='maybe'" in done.stderr
    assert '"type":"RECORD"' not in done.stdout


# D14: a start in the future is said; years before 1000 keep four digits in filters


def test_d14_a_bookmark_in_the_future_is_warned_about(looker_emulator):
    run = run_tap_process(
        config_for(looker_emulator, history_spec()),
        state=bookmark_state("query_history", "2030-01-01T00:00:00+00:00"),
    )
    assert run.exit_code == 0
    assert "after this run began" in run.stderr


def test_d14_filters_keep_four_digit_years():
    moment = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert looker_time(moment, dt.UTC) == "0001-01-01 00:00:00"


@pytest.mark.parametrize(
    ("content", "message"), [(None, "was not found"), ("not json", "Expecting")]
)
def test_d13_a_config_file_missing_or_not_json(tmp_path, content, message):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "tap_looker_query", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert message in done.stderr


def test_d13_a_setting_in_the_environment_that_does_not_parse(looker_emulator):
    done = subprocess.run(
        [sys.executable, "-m", "tap_looker_query", "--config", "ENV"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TAP_LOOKER_QUERY_TIMEOUT": "abc"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "Invalid settings" in done.stderr
