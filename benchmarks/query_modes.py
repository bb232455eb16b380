"""Inline runs against Looker query tasks: what `query_mode: async` costs per query.

`python -m benchmarks.query_modes` runs the same incremental backfill (System Activity history,
one-day windows) against the emulator with 300 ms per query, in `sync` and `async` mode, one and
four queries in flight, and prints the wall time and the time per query per slot. The figures
justify `query_mode: auto` (inline, tasks only for queries slower than `timeout`).
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from typing import Any

from looker_emulator import LookerEmulator
from tap_looker_query.tap import TapLookerQuery

LATENCY = 0.3
#: The workload (System Activity history), fixed here so that the figures do not move with tests.
SPEC = {
    "name": "query_history",
    "model": "system__activity",
    "explore": "history",
    "fields": [
        "history.id",
        "history.created_time",
        "history.runtime",
        "history.status",
        "history.is_single_query",
        "user.id",
        "user.name",
        "query.model",
    ],
    "sorts": ["history.created_time"],
    "metadata": {"datetime": "history.created_time", "primary_keys": ["history.id"]},
}


def sync_in_process(config: dict[str, Any]) -> int:
    """Sync in this process (no interpreter start-up in the wall time); the records it printed."""
    tap = TapLookerQuery(config=config, parse_env_config=False)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with redirect_stdout(out):
            tap.sync_all()
    finally:
        tap.close()
    out.flush()
    out.seek(0)
    return sum(json.loads(line)["type"] == "RECORD" for line in out if line.startswith('{"type"'))


def main() -> None:
    with LookerEmulator() as emulator:
        emulator.faults.query_latency = LATENCY
        print("| mode | in flight | wall time | rows | queries | s per query per slot |")
        print("|---|---|---|---|---|---|")
        for mode in ("sync", "async"):
            for in_flight in (1, 4):
                config = {
                    "base_url": emulator.base_url,
                    "client_id": emulator.client_id,
                    "client_secret": emulator.client_secret,
                    "start_date": "2026-10-02T00:00:00Z",
                    "query_mode": mode,
                    "max_concurrent_queries": in_flight,
                    "queries": [SPEC],
                }
                emulator.clear_requests()
                began = time.monotonic()
                records = sync_in_process(config)
                seconds = time.monotonic() - began
                queries = sum(
                    1
                    for r in emulator.requests
                    if r.method == "POST"
                    and ("/queries/run/" in r.path or r.path.endswith("/query_tasks"))
                )
                print(
                    f"| {mode} | {in_flight} | {seconds:.2f} s | "
                    f"{records} | {queries} | "
                    f"{seconds / max(queries, 1) * in_flight:.3f} |"
                )


if __name__ == "__main__":
    main()
