"""The window reader without HTTP: a fake Looker answers each query from a list of rows.

Every case of reading a window (hold-back of the newest second, continuing past the row limit,
a crowded second read without a limit, a cut-off body resumed, a timeout split in two, final
and retriable failures, a full-table rerun) is checked in milliseconds here; the emulator tests
prove the same through HTTP.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_looker_query.engine.plan import Window, plan_windows
from tap_looker_query.engine.reader import WindowDone, WindowReader
from tap_looker_query.engine.records import RecordBuilder
from tap_looker_query.errors import (
    ConnectionLostError,
    LookerQueryError,
    QueryTimeoutError,
    StreamFailedError,
    TruncatedResultError,
)
from tap_looker_query.progress import Progress
from tap_looker_query.schema import Kind
from tap_looker_query.specs.model import UNLIMITED, QuerySpec

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
FIELD = "v.created_time"
PLAN = [("v.id", "v_id", Kind.INTEGER), (FIELD, "v_created_time", Kind.DATETIME)]
LOG = logging.getLogger("test_reader")


def spec(limit: int | None = None) -> QuerySpec:
    return QuerySpec(
        name="s",
        model="m",
        explore="v",
        fields=("v.id", FIELD),
        datetime_field=FIELD,
        primary_keys=("v.id",),
        limit=limit,
    )


def rows_at(*seconds: int) -> list[dict]:
    """One row per entry, at T0 + that many seconds, ids in order."""
    return [
        {"v.id": i, FIELD: (T0 + dt.timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S")}
        for i, s in enumerate(sorted(seconds))
    ]


@dataclass
class FakeQuery:
    batches: list[list[dict]]
    fail_after: int | None = None  # raise `error` after this many batches
    error: Exception | None = None
    cancelled: bool = False

    def rows(self):
        for index, batch in enumerate(self.batches):
            if self.fail_after is not None and index >= self.fail_after:
                raise self.error  # type: ignore[misc]
            yield batch
        if self.fail_after is not None and self.fail_after >= len(self.batches):
            raise self.error  # type: ignore[misc]

    def cancel(self):
        self.cancelled = True


@dataclass
class FakeLooker:
    """Answers `start(body)` from `data`, honouring the window filter, limit and batch size."""

    data: list[dict]
    batch: int = 3
    faults: list[tuple[int | None, Exception]] = field(default_factory=list)  # per query
    bodies: list = field(default_factory=list)
    queries: list[FakeQuery] = field(default_factory=list)

    def start(self, body):
        self.bodies.append(body)
        rows = self.data
        expression = body.filters.get(FIELD)
        if expression:
            low, high = expression.split(" to ")
            rows = [row for row in rows if low <= row[FIELD] < high]
        if body.limit != UNLIMITED:
            rows = rows[: body.limit]
        batches = [rows[i : i + self.batch] for i in range(0, len(rows), self.batch)]
        fail_after, error = self.faults.pop(0) if self.faults else (None, None)
        query = FakeQuery(batches, fail_after, error)
        self.queries.append(query)
        return query


def reader_for(looker: FakeLooker, limit: int | None = None, retries: int = 3) -> WindowReader:
    return WindowReader(
        spec(limit),
        start=looker.start,
        builder=RecordBuilder(PLAN, UTC),
        tz=UTC,
        tz_name="UTC",
        max_retries=retries,
        progress=Progress("s", LOG, UTC),
        logger=LOG,
    )


def ids(batches) -> list[int]:
    return [record["v_id"] for batch in batches for record in batch]


WHOLE = Window(T0, T0 + dt.timedelta(hours=1))


def test_every_row_once_in_order_with_the_newest_second_held_back():
    looker = FakeLooker(rows_at(0, 1, 1, 1, 2, 2, 5, 9, 9, 9), batch=4)
    batches = list(reader_for(looker).window(WHOLE))
    assert ids(batches) == list(range(10))
    # A batch never ends in the middle of a second.
    seconds = [[record["v_created_time"] for record in batch] for batch in batches if batch]
    for before, after in itertools.pairwise(seconds):
        assert before[-1] < after[0]


def test_a_window_at_the_row_limit_continues_from_its_last_second():
    looker = FakeLooker(rows_at(0, 1, 2, 3, 3, 4, 5, 6, 7, 7), batch=2)
    reader = reader_for(looker, limit=4)
    assert ids(reader.window(WHOLE)) == list(range(10))
    assert len(looker.bodies) > 1
    assert reader.stats.splits >= 1


def test_more_rows_in_one_second_than_the_limit_are_read_without_a_limit():
    looker = FakeLooker(rows_at(0, 3, 3, 3, 3, 3, 3, 4), batch=2)
    reader = reader_for(looker, limit=3)
    assert ids(reader.window(WHOLE)) == list(range(8))
    assert any(body.limit == UNLIMITED for body in looker.bodies)


def test_a_cut_off_body_resumes_at_the_held_second_without_repeats():
    cut = TruncatedResultError("the JSON result ended early")
    looker = FakeLooker(rows_at(0, 1, 2, 2, 3, 4, 5, 6), batch=3, faults=[(2, cut)])
    reader = reader_for(looker)
    assert ids(reader.window(WHOLE)) == list(range(8))
    assert reader.stats.retries == 1
    second = looker.bodies[1].filters[FIELD]
    assert second.startswith("2026-01-01 00:00:04 to")  # from the second held back


def test_a_dropped_connection_before_any_row_retries_the_whole_window():
    lost = ConnectionLostError("Connection reset by peer")
    looker = FakeLooker(rows_at(0, 1, 2), faults=[(0, lost), (0, lost)])
    reader = reader_for(looker)
    assert ids(reader.window(WHOLE)) == [0, 1, 2]
    assert reader.stats.retries == 2


def test_retries_run_out_and_the_failure_names_spec_window_and_count():
    lost = ConnectionLostError("Connection reset by peer")
    looker = FakeLooker(rows_at(0, 1, 2), faults=[(0, lost)] * 3)
    with pytest.raises(StreamFailedError) as failure:
        list(reader_for(looker, retries=2).window(WHOLE))
    message = str(failure.value)
    assert "query 's'" in message
    assert "window [2026-01-01 00:00:00, 2026-01-01 01:00:00)" in message
    assert "after 2 retries" in message


def test_lookers_own_error_fails_at_once_without_a_retry():
    looker = FakeLooker(rows_at(0, 1), faults=[(0, LookerQueryError("Unknown column"))])
    reader = reader_for(looker)
    with pytest.raises(StreamFailedError, match="Unknown column"):
        list(reader.window(WHOLE))
    assert len(looker.bodies) == 1
    assert reader.stats.retries == 0


def test_a_value_of_the_wrong_type_fails_naming_the_field():
    data = rows_at(0, 1)
    data[1]["v.id"] = "not a number"
    with pytest.raises(StreamFailedError, match=r"wrong type.*v\.id"):
        list(reader_for(FakeLooker(data)).window(WHOLE))


def test_a_query_timeout_splits_the_window_in_two_halves_read_in_order():
    timeout = QueryTimeoutError("the query ran longer than query_timeout")
    looker = FakeLooker(rows_at(0, 100, 1000, 2000, 3500), faults=[(0, timeout)])
    reader = reader_for(looker)
    assert ids(reader.window(WHOLE)) == list(range(5))
    assert reader.stats.splits == 1
    halves = [body.filters[FIELD] for body in looker.bodies[1:3]]
    assert halves == [
        "2026-01-01 00:00:00 to 2026-01-01 00:30:00",
        "2026-01-01 00:30:00 to 2026-01-01 01:00:00",
    ]


def test_a_single_second_that_times_out_fails():
    timeout = QueryTimeoutError("too slow")
    looker = FakeLooker(rows_at(0), faults=[(0, timeout)])
    second = Window(T0, T0 + dt.timedelta(seconds=1))
    with pytest.raises(StreamFailedError, match="too slow"):
        list(reader_for(looker).window(second))


def test_windows_yield_a_window_done_after_each_window_and_cancel_what_is_left():
    looker = FakeLooker(rows_at(0, 1, 3700, 7300))
    windows = plan_windows(T0, T0 + dt.timedelta(hours=3), dt.timedelta(hours=1))
    reader = reader_for(looker)
    events = list(reader.windows(windows, ahead=2))
    done = [event for event in events if isinstance(event, WindowDone)]
    assert [event.window for event in done] == windows
    assert [event.rows for event in done] == [2, 1, 1]
    assert all(query.cancelled for query in looker.queries)


def test_windows_stopped_early_cancel_the_queries_fetched_ahead():
    looker = FakeLooker(rows_at(0, 3700, 7300))
    windows = plan_windows(T0, T0 + dt.timedelta(hours=3), dt.timedelta(hours=1))
    events = reader_for(looker).windows(windows, ahead=3)
    next(events)
    events.close()
    assert len(looker.queries) == 3
    assert all(query.cancelled for query in looker.queries)


def test_the_next_stream_is_told_once_the_last_queries_are_out():
    told = []
    looker = FakeLooker(rows_at(0, 3700, 7300))
    windows = plan_windows(T0, T0 + dt.timedelta(hours=3), dt.timedelta(hours=1))
    events = reader_for(looker).windows(windows, ahead=2, on_last_queries=lambda: told.append(1))
    for _event in events:
        pass
    assert told == [1]


def test_a_full_table_rerun_skips_the_rows_already_emitted():
    lost = ConnectionLostError("reset")
    looker = FakeLooker(rows_at(*range(10)), batch=3, faults=[(2, lost)])
    reader = reader_for(looker)
    assert ids(reader.full()) == list(range(10))
    assert len(looker.bodies) == 2


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 59), min_size=0, max_size=40),
    limit=st.integers(1, 8),
    batch=st.integers(1, 5),
    cut_after=st.one_of(st.none(), st.integers(0, 4)),
)
def test_any_rows_any_limit_any_cut_every_row_exactly_once(seconds, limit, batch, cut_after):
    faults = [] if cut_after is None else [(cut_after, TruncatedResultError("cut"))]
    looker = FakeLooker(rows_at(*seconds), batch=batch, faults=faults)
    window = Window(T0, T0 + dt.timedelta(minutes=1))
    assert ids(reader_for(looker, limit=limit).window(window)) == list(range(len(seconds)))


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Asia/Tokyo"]
)
def test_continuations_keep_the_query_zones_offset(zone):
    """D1: a window continued at the row limit or after a cut resumes at the right instant."""
    tz = ZoneInfo(zone)
    local = dt.datetime(2026, 1, 1, tzinfo=tz)
    data = [
        {"v.id": i, FIELD: (local + dt.timedelta(seconds=7 * i)).strftime("%Y-%m-%d %H:%M:%S")}
        for i in range(60)
    ]
    looker = FakeLooker(data, batch=4, faults=[(3, TruncatedResultError("cut"))])
    reader = WindowReader(
        spec(limit=10),
        start=looker.start,
        builder=RecordBuilder(PLAN, tz),
        tz=tz,
        tz_name=zone,
        max_retries=3,
        progress=Progress("s", LOG, tz),
        logger=LOG,
    )
    window = Window(local, local + dt.timedelta(hours=1))
    assert ids(reader.window(window)) == list(range(60))
