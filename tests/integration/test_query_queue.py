"""Looker's per-user query queue, expired tasks and cached answers (issue 14).

Past 15 running queries per user Looker queues further queries and drops those that waited
600 s ("Query Timeouts and Queueing"); a query task may report `expired` for a while before it
turns `complete` or `error` (spectacles issue #111); a task asked for with `cache=false` may
still answer from the cache (a 2022 recording). The emulator models each (looker_emulator/
README.md); these tests run the tap through them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter

import pytest

from looker_emulator.server import API_USER_ID
from tests.helpers import by_id, config_for, expected_history, history_spec, run_tap

START = "2026-10-12T00:00:00+00:00"  # the emulator's history rows run to 2026-10-31


def config(emulator, windows, **settings):
    """The history spec from START to now in about `windows` windows (`windows_of` counts them)."""
    hours = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(START)).total_seconds() / 3600
    return config_for(
        emulator,
        history_spec(),
        start_date=START,
        window_hours=max(1, int(hours // windows)),
        max_retry_wait=0,
        **settings,
    )


def windows_of(caplog) -> int:
    """How many windows the tap planned (its INFO line `N window(s) of H h from ...`)."""
    [n] = [
        int(m.group(1))
        for r in caplog.records
        if (m := re.search(r"query_history: (\d+) window\(s\) of", r.getMessage()))
    ]
    return n


def assert_complete(run, emulator):
    assert run.exit_code == 0, run.failures
    records = run.records("query_history")
    assert records, "the range holds rows"
    assert max(Counter(r["history_id"] for r in records).values()) == 1
    assert by_id(records) == by_id(expected_history(emulator, since=START))


def query_runs(emulator, mode):
    path = "/api/4.0/query_tasks" if mode == "async" else "/api/4.0/queries/run/json"
    return [r for r in emulator.requests if r.method == "POST" and r.path == path]


# The queue


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_twenty_queries_against_a_limit_of_15_never_exceed_it(looker_emulator, caplog, mode):
    emu = looker_emulator
    emu.faults.concurrency_limit = 15
    emu.faults.query_latency = 0.5
    with caplog.at_level(logging.INFO):
        run = run_tap(config(emu, 20, max_concurrent_queries=15, query_mode=mode))
    assert_complete(run, emu)
    assert windows_of(caplog) >= 20
    assert len(query_runs(emu, mode)) == windows_of(caplog)  # none failed or was retried
    assert emu.peak_in_flight[API_USER_ID] <= 15
    assert emu.peak_running[API_USER_ID] <= 15
    assert emu.peak_in_flight[API_USER_ID] > 1  # the windows did run side by side


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_queries_past_lookers_limit_wait_in_its_queue_and_all_load(looker_emulator, caplog, mode):
    """Another job shares the API user, so the tap's 8 meet Looker's limit of 3: Looker queues
    the rest, and waiting there is normal (no failure, no retry)."""
    emu = looker_emulator
    emu.faults.concurrency_limit = 3
    emu.faults.query_latency = 0.3
    with caplog.at_level(logging.INFO):
        run = run_tap(config(emu, 12, max_concurrent_queries=8, query_mode=mode))
    assert_complete(run, emu)
    assert len(query_runs(emu, mode)) == windows_of(caplog)
    assert emu.peak_running[API_USER_ID] == 3
    assert emu.peak_in_flight[API_USER_ID] > 3  # some did wait in Looker's queue


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_query_dropped_from_the_queue_is_retried(looker_emulator, caplog, mode):
    emu = looker_emulator
    emu.faults.concurrency_limit = 1
    emu.faults.queue_timeout = 0.3
    emu.faults.query_latency = 0.5
    with caplog.at_level(logging.INFO):
        run = run_tap(config(emu, 4, max_concurrent_queries=2, query_mode=mode))
    assert_complete(run, emu)
    retried = [r.getMessage() for r in caplog.records if "dropped from the queue" in r.getMessage()]
    assert retried, "a query was dropped from the queue and retried"
    assert len(query_runs(emu, mode)) > windows_of(caplog)


# Expired tasks


def test_a_task_expired_for_20_seconds_then_complete_loads_every_row(looker_emulator, caplog):
    emu = looker_emulator
    emu.faults.expire_tasks(20)
    with caplog.at_level(logging.INFO):
        run = run_tap(config(emu, 3, query_mode="async", max_concurrent_queries=1))
    assert_complete(run, emu)
    assert len(query_runs(emu, "async")) == windows_of(caplog)  # polled on, not created anew


def test_a_task_expired_past_query_timeout_is_created_anew_once_then_fails(looker_emulator):
    emu = looker_emulator
    emu.faults.expire_tasks(float("inf"), count=2)  # the first window's task and its re-creation
    cfg = config(emu, 3, query_mode="async", max_concurrent_queries=1, query_timeout=2)
    first = run_tap(cfg)
    [reason] = first.failures.values()
    assert "query 'query_history', window [2026-10-12 00:00:00, " in reason
    assert "both stayed 'expired'" in reason
    assert "Looker's last answer: status 'expired'" in reason
    assert len(query_runs(emu, "async")) == 2  # created, created anew once, and no more
    assert first.bookmark("query_history") is None  # nothing was claimed
    emu.faults.reset()
    second = run_tap(cfg, state=first.last_state)
    assert_complete(second, emu)


# The cache


def test_a_result_from_lookers_cache_is_logged_with_spec_and_window(looker_emulator, caplog):
    emu = looker_emulator
    emu.faults.serve_from_cache()
    with caplog.at_level(logging.INFO):
        run = run_tap(config(emu, 2, query_mode="async", max_concurrent_queries=1))
    assert_complete(run, emu)
    [line] = [r for r in caplog.records if "from its cache" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert "query 'query_history', window [2026-10-12 00:00:00, " in line.getMessage()
    creates = [r for r in emu.requests if r.path == "/api/4.0/query_tasks"]
    assert creates
    assert all(r.query.get("cache") == "false" for r in creates)  # each asked for fresh results
