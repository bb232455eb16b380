"""Run the tap the way users do and collect what it printed: Singer messages, logs, exit code."""

from __future__ import annotations

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
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

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
) -> TapRun:
    """Sync in this process (fast; what a test of behaviour needs)."""
    tap = TapLookerQuery(config=config, state=state, catalog=catalog, parse_env_config=False)
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with redirect_stdout(buffer):
            tap.sync_all()
    finally:
        tap.close()
    buffer.flush()
    buffer.seek(0)
    return TapRun(_parse(buffer.read()), exit_code=1 if tap.failures else 0, failures=tap.failures)


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
