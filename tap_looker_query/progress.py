"""What one stream did: progress lines a person can read, METRIC points a machine can.

A backfill of 90 mostly empty windows must not print 90 lines: a progress line covers every
window since the previous one and is written at most every `PROGRESS_INTERVAL` seconds (and
for the last window), with rows, rate and ETA. Each window also gives one METRIC point
(`singer_sdk.metrics`, the SDK's format): its duration, rows, queries, splits and retries,
tagged with the stream and the window's bounds only (no URL, no credential).
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

from singer_sdk import metrics

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

    from tap_looker_query.engine.plan import Window

#: Progress lines at most this often.
PROGRESS_INTERVAL = 10.0


@dataclass
class StreamStats:
    """Counters of one stream's sync."""

    rows: int = 0
    windows_done: int = 0
    windows_total: int = 0
    queries: int = 0
    splits: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Since:
    """What happened since the last progress line."""

    windows: int = 0
    empty: int = 0
    rows: int = 0


class Progress:
    """Logs a stream's progress, and a METRIC point per window."""

    def __init__(self, name: str, logger: logging.Logger, tz: dt.tzinfo) -> None:
        """Report for stream `name`, with times in the query time zone."""
        self.name = name
        self.logger = logger
        self.tz = tz
        self.stats = StreamStats()
        self._last_line = time.monotonic()
        self._since = _Since()
        self._at_window = (0, 0, 0)  # queries, splits, retries when the window began

    def restart(self) -> None:
        """A new sync of the stream: counters from zero (queries already started stay)."""
        self.stats = StreamStats(queries=self.stats.queries)
        self._last_line = time.monotonic()
        self._since = _Since()
        self._at_window = (self.stats.queries, 0, 0)

    def window_done(self, window: Window, rows: int, seconds: float) -> None:
        """A window was read: its METRIC point, and a progress line when one is due."""
        stats = self.stats
        stats.windows_done += 1
        queries, splits, retries = self._at_window
        self._at_window = (stats.queries, stats.splits, stats.retries)
        metrics.log(
            metrics.get_metrics_logger(),
            metrics.Point(
                "timer",
                metrics.Metric.JOB_DURATION,
                round(seconds, 3),
                {
                    metrics.Tag.STREAM: self.name,
                    metrics.Tag.JOB_TYPE: "looker_window",
                    "window_start": window.start.isoformat(),
                    "window_end": window.end.isoformat(),
                    "rows": rows,
                    "queries": max(0, stats.queries - queries),
                    "splits": stats.splits - splits,
                    "retries": stats.retries - retries,
                },
            ),
        )
        since = self._since
        since.windows += 1
        since.empty += rows == 0
        since.rows += rows
        now = time.monotonic()
        last = stats.windows_done >= stats.windows_total
        if last or now - self._last_line >= PROGRESS_INTERVAL:
            self._line(window, now)

    def _line(self, window: Window, now: float) -> None:
        stats, since = self.stats, self._since
        elapsed = now - stats.started
        left = stats.windows_total - stats.windows_done
        eta = elapsed / stats.windows_done * left if stats.windows_done else 0.0
        self.logger.info(
            "%s: %d of %d windows done, up to %s; %d rows in the last %d window(s) (%d empty), "
            "%d rows in all at %.0f rows/s; ETA %.0f s",
            self.name,
            stats.windows_done,
            stats.windows_total,
            window.end.astimezone(self.tz).isoformat(),
            since.rows,
            since.windows,
            since.empty,
            stats.rows,
            stats.rows / elapsed if elapsed > 0 else 0.0,
            eta,
        )
        self._last_line = now
        self._since = _Since()

    def reading(self, window: Window | None) -> None:
        """Called as batches arrive: a line at most every `PROGRESS_INTERVAL` inside a window."""
        now = time.monotonic()
        if now - self._last_line < PROGRESS_INTERVAL:
            return
        self._last_line = now
        stats = self.stats
        elapsed = now - stats.started
        where = f"window {window.describe(self.tz)}" if window else "the query"
        self.logger.info(
            "%s: %d rows so far (%.0f rows/s), in %s; %d of %d windows done",
            self.name,
            stats.rows,
            stats.rows / elapsed if elapsed > 0 else 0.0,
            where,
            stats.windows_done,
            stats.windows_total,
        )

    def summary(self) -> None:
        """The last line of a stream's sync."""
        stats = self.stats
        self.logger.info(
            "%s: done: %d rows, %d of %d windows, %d queries, %d splits, %d retries, %.1f s",
            self.name,
            stats.rows,
            stats.windows_done,
            stats.windows_total,
            stats.queries,
            stats.splits,
            stats.retries,
            time.monotonic() - stats.started,
        )
