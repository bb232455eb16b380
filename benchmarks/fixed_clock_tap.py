"""The tap with the end of its incremental windows pinned (env `BENCH_TAP_NOW`, ISO 8601).

The tap reads windows from `start_date` up to the moment the run started. The synthetic rows
start on 2026-01-01, so to get N small windows that all hold rows the benchmark pins that moment
(`run_started`) to a few hours after 2026-01-01. Nothing else changes.

    BENCH_TAP_NOW=2026-01-01T20:00:00Z python -m benchmarks.fixed_clock_tap --config c.json
"""

from __future__ import annotations

import datetime as dt
import os
import typing as t

from tap_looker_query.tap import TapLookerQuery


class FixedClockTap(TapLookerQuery):
    """TapLookerQuery whose run "started" at `BENCH_TAP_NOW`."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        now = os.environ.get("BENCH_TAP_NOW")
        if now:
            self.run_started = dt.datetime.fromisoformat(now)


if __name__ == "__main__":
    FixedClockTap.cli()
