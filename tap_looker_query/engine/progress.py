"""What one stream did, for its progress lines and its summary at the end."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

    from tap_looker_query.engine.plan import Window

#: Progress lines at most this often while a long window streams.
PROGRESS_INTERVAL = 30.0


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


class Progress:
    """Logs a stream's progress: after each window, every 30 s inside one, and at the end."""

    def __init__(self, name: str, logger: logging.Logger, tz: dt.tzinfo) -> None:
        """Report for stream `name`, with times in the query time zone."""
        self.name = name
        self.logger = logger
        self.tz = tz
        self.stats = StreamStats()
        self._last_line = 0.0

    def restart(self) -> None:
        """A new sync of the stream: counters from zero (queries already started stay)."""
        self.stats = StreamStats(queries=self.stats.queries)

    def window_done(self, window: Window, rows: int, seconds: float) -> None:
        """One line per finished window, with the rate and the time left."""
        stats = self.stats
        stats.windows_done += 1
        left = stats.windows_total - stats.windows_done
        elapsed = time.monotonic() - stats.started
        eta = elapsed / stats.windows_done * left
        self.logger.info(
            "%s: window %s: %d rows in %.2f s (%.0f rows/s); %d of %d windows done, ETA %.0f s",
            self.name,
            window.describe(self.tz),
            rows,
            seconds,
            rows / seconds if seconds > 0 else 0.0,
            stats.windows_done,
            stats.windows_total,
            eta,
        )

    def reading(self, window: Window | None) -> None:
        """Called as batches arrive: a line at most every `PROGRESS_INTERVAL` seconds."""
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
