"""Run the tap the way users do and collect what it printed: Singer messages, logs, exit code."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tap_looker_query.tap import TapLookerQuery

REPO = Path(__file__).resolve().parent.parent


@dataclass
class TapRun:
    """What one tap run printed."""

    messages: list[dict[str, Any]]
    exit_code: int = 0
    stderr: str = ""
    stdout: str = ""
    failures: dict[str, str] = field(default_factory=dict)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def all_records(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "RECORD"]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any]:
        return self.states[-1]

    def schema(self, stream: str) -> dict[str, Any]:
        return next(m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream)

    def bookmark(self, stream: str) -> str | None:
        return self.last_state["bookmarks"][stream].get("replication_key_value")


def _parse(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"type"')]


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    before_sync: Any = None,
) -> TapRun:
    """Sync in this process (fast; what a test of behaviour needs).

    `before_sync(tap)` runs after discovery (the tap has logged in) and before the sync.
    """
    tap = TapLookerQuery(config=config, state=state, catalog=catalog, parse_env_config=False)
    if before_sync is not None:
        before_sync(tap)
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with redirect_stdout(buffer):
            tap.sync_all()
    finally:
        tap.close()
    buffer.flush()
    buffer.seek(0)
    return TapRun(
        _parse(buffer.read()), exit_code=1 if tap.run.failures else 0, failures=tap.run.failures
    )


def about(about_format: str) -> str:
    """What `tap-looker-query --about --format FORMAT` prints: the same CLI, in this process."""
    result = CliRunner().invoke(TapLookerQuery.cli, ["--about", "--format", about_format])
    assert result.exit_code == 0, result.output
    return result.output


def run_tap_process(
    config: dict[str, Any],
    *args: str,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> TapRun:
    """Run `python -m tap_looker_query` as a user would (exit codes, logs, CLI flags)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "tap_looker_query"]
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        command += ["--config", str(config_path)]
        for flag, value in (("--state", state), ("--catalog", catalog)):
            if value is not None:
                path = Path(tmp, flag.strip("-") + ".json")
                path.write_text(json.dumps(value))
                command += [flag, str(path)]
        command += list(args)
        process = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            check=False,
        )
    return TapRun(
        _parse(process.stdout),
        exit_code=process.returncode,
        stderr=process.stderr,
        stdout=process.stdout,
    )


# The System Activity history spec most tests use, and what Looker holds for it.

START = "2026-07-04T00:00:00+00:00"  # the System Activity data set spans 2026-07-04 .. 2026-11-01
FIELDS = [
    "history.id",
    "history.created_time",
    "history.runtime",
    "history.status",
    "history.is_single_query",
    "user.id",
    "user.name",
    "query.model",
]


def history_spec(**overrides):
    spec = {
        "name": "query_history",
        "model": "system__activity",
        "explore": "history",
        "fields": FIELDS,
        "sorts": ["history.created_time"],
        "metadata": {"datetime": "history.created_time", "primary_keys": ["history.id"]},
    }
    spec.update(overrides)
    return spec


def config_for(emulator, *specs, **settings):
    return {
        "base_url": emulator.base_url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "start_date": START,
        "queries": list(specs),
        **settings,
    }


def as_record(row):
    """What the tap must make of a Looker json row (independent of the tap's converters)."""
    out = {}
    for name, value in row.items():
        prop = name.replace(".", "_")
        if name == "history.created_time" and value is not None:
            value = value.replace(" ", "T") + "+00:00"
        elif name == "history.is_single_query" and value is not None:
            value = {"Yes": True, "No": False}[value]
        out[prop] = value
    return out


def expected_history(emulator, since=START, until=None):
    since_text = dt.datetime.fromisoformat(since).strftime("%Y-%m-%d %H:%M:%S")
    until_text = (until or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S")
    rows = emulator.query_rows(
        "system__activity",
        "history",
        FIELDS,
        filters={"history.created_time": f"{since_text} to {until_text}"},
        sorts=["history.created_time"],
        limit="-1",
    )
    return [as_record(row) for row in rows]


def by_id(records):
    return sorted(records, key=lambda r: r["history_id"])
