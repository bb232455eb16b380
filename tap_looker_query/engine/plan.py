"""Where an incremental read starts, and the half-open `[start, end)` windows it walks.

A window becomes one Looker query with the filter `start to end`, which Looker reads as
`start <= t < end` in the query time zone (filter-expression docs: "to" excludes its end).
Looker's filter grammar has no fractional seconds, so every bound is a whole second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ONE_SECOND = dt.timedelta(seconds=1)


def floor_second(moment: dt.datetime) -> dt.datetime:
    """Drop sub-second precision (filter bounds are whole seconds)."""
    return moment.replace(microsecond=0)


def looker_time(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """`YYYY-MM-DD HH:MM:SS` wall time in the query time zone, as Looker filters expect."""
    local = moment.astimezone(tz)
    # Four-digit years (strftime's %Y drops the padding before 1000 on glibc).
    return f"{local.year:04d}-{local:%m-%d %H:%M:%S}"


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time range `[start, end)` of aware datetimes, whole seconds."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        """Reject empty or naive windows early: they would silently match nothing."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = "window bounds must be timezone-aware"
            raise ValueError(msg)
        if self.end <= self.start:
            msg = f"empty window {self.start.isoformat()} to {self.end.isoformat()}"
            raise ValueError(msg)

    def filter_expression(self, tz: dt.tzinfo) -> str:
        """Looker's date filter for this window: `A to B` (start inclusive, end exclusive)."""
        return f"{looker_time(self.start, tz)} to {looker_time(self.end, tz)}"

    def describe(self, tz: dt.tzinfo) -> str:
        """A short human form for logs and errors."""
        return f"[{looker_time(self.start, tz)}, {looker_time(self.end, tz)})"

    @property
    def is_single_second(self) -> bool:
        """True when the window cannot be split further in time."""
        return self.end - self.start <= ONE_SECOND

    def from_(self, start: dt.datetime) -> Window:
        """The rest of this window from `start` (a whole second inside it)."""
        return Window(floor_second(start), self.end)

    def first_second(self) -> Window:
        """The window's first second alone."""
        return Window(self.start, self.start + ONE_SECOND)


def plan_windows(start: dt.datetime, end: dt.datetime, size: dt.timedelta) -> list[Window]:
    """Cover `[start, end)` with consecutive windows of `size` (the last one shorter).

    `start` is floored to the second (inclusive bounds only ever widen); `end` is floored too,
    so no window reaches past the moment the run started. Returns no windows when
    `start >= end`.
    """
    if size < ONE_SECOND:
        msg = "window size must be at least one second"
        raise ValueError(msg)
    start, end = floor_second(start), floor_second(end)
    windows: list[Window] = []
    cursor = start
    while cursor < end:
        upper = min(cursor + size, end)
        windows.append(Window(cursor, upper))
        cursor = upper
    return windows


def parse_instant(value: str) -> dt.datetime:
    """An aware datetime from a bookmark or `start_date` (naive means UTC, as in the SDK).

    Raises:
        ValueError: the text is not an ISO 8601 datetime.
    """
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 19 and text[10] == " ":  # noqa: PLR2004
        text = f"{text[:10]}T{text[11:]}"
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def start_of(
    *,
    bookmark: dt.datetime | None,
    start_date: dt.datetime | None,
    default_days: int,
    now: dt.datetime,
    lookback: dt.timedelta = dt.timedelta(0),
) -> dt.datetime:
    """Where an incremental read starts: the later of the bookmark and `start_date`.

    That is the Singer SDK's own rule (`Stream.compare_start_date`), so the bookmark value the
    SDK logs at the start of a sync is where the first window starts, less the `lookback`
    re-read before it (never earlier than `start_date`). Without a bookmark the read starts at
    `start_date`, or `default_days` before `now` when that is not set either.
    """
    if bookmark is not None and start_date is not None:
        return max(bookmark - lookback, start_date)
    if bookmark is not None:
        return bookmark - lookback
    if start_date is not None:
        return start_date
    return now - dt.timedelta(days=default_days)
