"""Windows: half-open ranges that cover the span exactly, with Looker filter strings."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_looker_query.engine.plan import ONE_SECOND, Window, floor_second, plan_windows

UTC = dt.UTC
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(UTC)
)


@given(start=instants, span=st.integers(0, 400 * 86400), hours=st.integers(1, 24 * 40))
def test_windows_cover_the_span_exactly_without_overlap(start, span, hours):
    end = start + dt.timedelta(seconds=span)
    windows = plan_windows(start, end, dt.timedelta(hours=hours))
    if floor_second(start) >= floor_second(end):
        assert windows == []
        return
    assert windows[0].start == floor_second(start)
    assert windows[-1].end == floor_second(end)
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert all(w.end - w.start <= dt.timedelta(hours=hours) for w in windows)
    assert all(w.start.microsecond == 0 and w.end.microsecond == 0 for w in windows)


def test_no_window_reaches_past_the_run_start():
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    end = dt.datetime(2024, 1, 3, 5, 30, 12, 999, tzinfo=UTC)
    windows = plan_windows(start, end, dt.timedelta(days=1))
    assert [w.end for w in windows][-1] == dt.datetime(2024, 1, 3, 5, 30, 12, tzinfo=UTC)
    assert len(windows) == 3


def test_filter_expression_is_half_open_wall_time_in_the_query_zone():
    window = Window(dt.datetime(2024, 3, 1, 5, tzinfo=UTC), dt.datetime(2024, 3, 2, 5, tzinfo=UTC))
    assert window.filter_expression(UTC) == "2024-03-01 05:00:00 to 2024-03-02 05:00:00"
    new_york = ZoneInfo("America/New_York")
    assert window.filter_expression(new_york) == "2024-03-01 00:00:00 to 2024-03-02 00:00:00"


def test_splitting_helpers():
    window = Window(dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 2, tzinfo=UTC))
    rest = window.from_(dt.datetime(2024, 1, 1, 10, 0, 5, 500, tzinfo=UTC))
    assert rest.start == dt.datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert rest.end == window.end
    assert window.first_second().end - window.first_second().start == ONE_SECOND
    assert window.first_second().is_single_second


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=UTC)),
        (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=UTC)),
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)),  # naive
    ],
)
def test_invalid_windows_are_rejected(start, end):
    with pytest.raises(ValueError, match="window"):
        Window(start, end)


@given(
    start=instants,
    seconds=st.integers(1, 90 * 86400),
    zone=st.sampled_from(["UTC", "Asia/Kolkata"]),
)
def test_filter_expression_round_trips_in_the_query_zone(start, seconds, zone):
    """The window's bounds, read back as wall time in the query zone, are the window itself.

    (Zones without daylight saving in the range drawn: elsewhere a wall time can be ambiguous.)
    """
    tz = dt.UTC if zone == "UTC" else ZoneInfo(zone)
    window = Window(floor_second(start), floor_second(start) + dt.timedelta(seconds=seconds))
    low, high = window.filter_expression(tz).split(" to ")
    assert dt.datetime.strptime(low, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz) == window.start
    assert dt.datetime.strptime(high, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz) == window.end
