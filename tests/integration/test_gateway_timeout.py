"""A 504 from the proxy in front of Looker (issue 14): `auto` moves that query to a query task
at once (sent again inline it would time out again); `sync` keeps retrying inline."""

from __future__ import annotations

import logging

from tests.helpers import config_for, expected_history, history_spec, run_tap

SINCE = "2026-10-30T00:00:00+00:00"


def test_auto_moves_a_504_run_to_a_query_task_and_counts_it(looker_emulator, caplog):
    looker_emulator.faults.fail_next(504, count=2, path="/queries/run/json")
    with caplog.at_level(logging.INFO):
        run = run_tap(config_for(looker_emulator, history_spec(), start_date=SINCE))
    assert run.exit_code == 0, run.failures
    want = expected_history(looker_emulator, since=SINCE)
    assert sorted(r["history_id"] for r in run.records("query_history")) == sorted(
        r["history_id"] for r in want
    )
    tasks = [r for r in looker_emulator.requests if r.path.endswith("/query_tasks")]
    assert len(tasks) == 2
    runs_504 = [r for r in looker_emulator.requests if r.status == 504]
    assert len(runs_504) == 2  # not retried inline
    assert any("moved to query tasks (2 after a 504)" in r.getMessage() for r in caplog.records)


def test_sync_retries_a_504_inline(looker_emulator):
    looker_emulator.faults.fail_next(504, count=2, path="/queries/run/json")
    run = run_tap(
        config_for(
            looker_emulator, history_spec(), start_date=SINCE, query_mode="sync", max_retry_wait=0
        )
    )
    assert run.exit_code == 0, run.failures
    assert not [r for r in looker_emulator.requests if "/query_tasks" in r.path]
