"""Inline runs against Looker query tasks: what `query_mode: async` costs per query.

`python -m benchmarks.query_modes` runs the same incremental backfill (System Activity history,
one-day windows) against the emulator with 300 ms per query, in `sync` and `async` mode, one and
four queries in flight, and prints the wall time and the time per query per slot. The figures
justify `query_mode: auto` (inline, tasks only for queries slower than `timeout`).
"""

from __future__ import annotations

import time

from tests.looker_emulator import LookerEmulator
from tests.tap_runner import history_spec, run_tap

LATENCY = 0.3


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
                    "queries": [history_spec()],
                }
                emulator.clear_requests()
                began = time.monotonic()
                run = run_tap(config)
                seconds = time.monotonic() - began
                queries = sum(
                    1
                    for r in emulator.requests
                    if r.method == "POST"
                    and ("/queries/run/" in r.path or r.path.endswith("/query_tasks"))
                )
                print(
                    f"| {mode} | {in_flight} | {seconds:.2f} s | "
                    f"{len(run.records('query_history'))} | {queries} | "
                    f"{seconds / max(queries, 1) * in_flight:.3f} |"
                )


if __name__ == "__main__":
    main()
