"""Operable output (issue 17): progress a person can read on a long mostly-empty backfill, one
METRIC point per window with no URL or secret, and the SDK's structured logging."""

from __future__ import annotations

import json
import re

from tests.helpers import config_for, history_spec, run_tap_process

# The History data set ends on 2026-11-01: 90 windows of 8 h from 2026-10-02 are mostly empty.
START = "2026-10-02T00:00:00+00:00"


def ninety_windows(emulator):
    config = config_for(emulator, history_spec(), start_date=START, window_hours=8)
    return config, run_tap_process(config, env={"BENCH_TAP_NOW": ""})


def test_a_90_window_backfill_logs_a_few_progress_lines_and_a_metric_per_window(
    looker_emulator,
):
    config, run = ninety_windows(looker_emulator)
    assert run.exit_code == 0
    lines = run.stderr.splitlines()
    progress = [line for line in lines if "windows done, up to" in line]
    total = int(re.search(r"of (\d+) windows done", progress[-1]).group(1))
    assert total >= 90
    assert len(progress) <= 10  # not one line per window
    assert f"{total} of {total} windows done" in progress[-1]
    assert "rows/s" in progress[-1]
    assert "ETA" in progress[-1]
    points = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in lines
        if "METRIC: " in line and '"looker_window"' in line
    ]
    assert len(points) == total
    assert sum(p["tags"]["rows"] for p in points) == len(run.records("query_history"))
    assert all(p["metric"] == "job_duration" for p in points)
    text = json.dumps(points)
    assert config["base_url"] not in text
    assert config["client_secret"] not in text


def test_structured_logging_through_singer_sdk_log_config(looker_emulator, tmp_path):
    log_config = tmp_path / "logging.yml"
    log_config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n"
        "  structured:\n"
        "    (): singer_sdk.logging.StructuredFormatter\n"
        "handlers:\n"
        "  stderr:\n"
        "    class: logging.StreamHandler\n"
        "    formatter: structured\n"
        "    stream: ext://sys.stderr\n"
        "root:\n"
        "  level: INFO\n"
        "  handlers: [stderr]\n"
    )
    config = config_for(looker_emulator, history_spec(), start_date="2026-10-30T00:00:00Z")
    run = run_tap_process(config, env={"SINGER_SDK_LOG_CONFIG": str(log_config)})
    assert run.exit_code == 0
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    messages = [r.get("message", "") for r in records]
    assert any("windows done" in m for m in messages)
    assert any("looker_window" in json.dumps(r) for r in records)  # the METRIC points too
    assert config["client_secret"] not in run.stderr
