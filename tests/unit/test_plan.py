"""Where an incremental read starts (`engine.plan.start_of`): the SDK's rule, less a lookback."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from tap_looker_query.engine.plan import start_of

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, tzinfo=UTC)
BOOKMARK = dt.datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
EARLY = dt.datetime(2026, 11, 1, tzinfo=UTC)
LATE = dt.datetime(2026, 11, 25, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def test_the_later_of_bookmark_and_start_date_as_the_sdk_logs_it():
    assert start_of(bookmark=BOOKMARK, start_date=EARLY, default_days=1, now=NOW) == BOOKMARK
    assert start_of(bookmark=BOOKMARK, start_date=LATE, default_days=1, now=NOW) == LATE


def test_without_a_bookmark_start_date_else_default_days():
    assert start_of(bookmark=None, start_date=EARLY, default_days=1, now=NOW) == EARLY
    assert start_of(bookmark=None, start_date=None, default_days=3, now=NOW) == NOW - 3 * 24 * HOUR


def test_the_lookback_reaches_before_the_bookmark_but_not_before_start_date():
    assert (
        start_of(bookmark=BOOKMARK, start_date=EARLY, default_days=1, now=NOW, lookback=2 * HOUR)
        == BOOKMARK - 2 * HOUR
    )
    near = BOOKMARK - HOUR
    assert (
        start_of(bookmark=BOOKMARK, start_date=near, default_days=1, now=NOW, lookback=2 * HOUR)
        == near
    )


def test_the_first_run_ignores_the_lookback():
    assert (
        start_of(bookmark=None, start_date=EARLY, default_days=1, now=NOW, lookback=HOUR) == EARLY
    )


@given(st.integers(0, 10_000), st.integers(-10_000, 10_000))
def test_never_after_the_bookmark_never_before_start_date(minutes, offset):
    start_date = BOOKMARK + dt.timedelta(minutes=offset)
    start = start_of(
        bookmark=BOOKMARK,
        start_date=start_date,
        default_days=1,
        now=NOW,
        lookback=dt.timedelta(minutes=minutes),
    )
    assert start >= start_date
    assert start <= max(BOOKMARK, start_date)
