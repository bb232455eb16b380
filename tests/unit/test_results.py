"""Result bodies: rows stream out; anything incomplete or malformed is an error, never data."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_looker_query.engine.formats import iter_csv_rows, iter_json_batches
from tap_looker_query.errors import (
    LookerQueryError,
    QueryDroppedError,
    ResultError,
    RetriableError,
    TruncatedResultError,
    query_error,
)

FIELDS = ["v.id", "v.name"]


class Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, as a slow network does."""

    def __init__(self, data: bytes, step: int = 3):
        self._data, self._step = data, step

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk, self._data = self._data[: self._step], self._data[self._step :]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def iter_json_rows(stream):
    """Rows one by one, as they come out of the batches."""
    for batch in iter_json_batches(stream):
        yield from batch


def json_rows(data: bytes):
    return list(iter_json_rows(Trickle(data)))


def csv_rows(data: bytes):
    return list(iter_csv_rows(Trickle(data), FIELDS))


def test_json_rows():
    body = (
        b'[{"v.id": 1, "v.name": "a, \\"b\\"\\n\xf0\x9f\x99\x82"}, {"v.id": 2.5, "v.name": null}]'
    )
    assert json_rows(body) == [
        {"v.id": 1, "v.name": 'a, "b"\n🙂'},
        {"v.id": 2.5, "v.name": None},
    ]
    assert json_rows(b"[]") == []


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (b'[{"looker_error": "Table not found"}]', LookerQueryError, "Table not found"),
        (b'[{"looker_error": "Query was dropped from the queue"}]', QueryDroppedError, "queue"),
        (b"", ResultError, "empty body"),
        (b"<html><body>502 Bad Gateway</body></html>", ResultError, "non-JSON body"),
        (b'[{"v.id": 1}, {"v.id": 2, "v.na', TruncatedResultError, "ended early"),
        (b'{"message": "Not found"}', ResultError, "JSON object instead of rows"),
    ],
)
def test_bad_json_bodies(body, error, text):
    with pytest.raises(error, match=text):
        json_rows(body)


def test_csv_maps_columns_by_position_and_keeps_quoting():
    body = 'ID,Name\n1,"a, ""b""\n🙂"\n2,\n'.encode()
    assert csv_rows(body) == [{"v.id": "1", "v.name": 'a, "b"\n🙂'}, {"v.id": "2", "v.name": None}]


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (b"ID,Name\n1,a\n2,b", TruncatedResultError, "cut off"),
        (b'ID,Name\n1,"a\n', TruncatedResultError, "cut off"),
        (b"ID\n1\n", ResultError, "1 columns for 2 fields"),
        (b"", ResultError, "empty body"),
        (b'[{"looker_error": "boom"}]', LookerQueryError, "boom"),
        (b'[{"looker_error": "timed out while queued"}]', QueryDroppedError, "queued"),
        (b"<html>oops</html>", ResultError, "HTML page"),
    ],
)
def test_bad_csv_bodies(body, error, text):
    with pytest.raises(error, match=text):
        csv_rows(body)


def test_a_cut_csv_row_is_never_yielded():
    seen = []
    with pytest.raises(TruncatedResultError):
        seen.extend(iter_csv_rows(Trickle(b"ID,Name\n1,a\n2,b"), FIELDS))
    assert seen == [{"v.id": "1", "v.name": "a"}]


row_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('ab}{],[":\\\n 🙂'), max_size=40),
)
rows_strategy = st.lists(
    st.dictionaries(st.sampled_from(["v.a", "v.b", "v.c"]), row_values, min_size=1), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, step=st.integers(1, 64))
def test_json_rows_survive_any_split_of_the_body(rows, step):
    """Braces, brackets and quotes inside strings, any read size: every row comes back as sent."""
    body = json.dumps(rows, ensure_ascii=False).encode()
    if rows and "looker_error" in rows[0]:
        return
    assert json_rows_with_step(body, step) == rows


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy.filter(bool), cut=st.integers(1, 10_000))
def test_a_cut_json_body_never_yields_a_partial_row(rows, cut):
    body = json.dumps(rows).encode()
    cut = min(cut, len(body) - 1)
    seen = []
    with pytest.raises(ResultError):
        seen.extend(iter_json_rows(Trickle(body[:cut], 7)))
    assert seen == rows[: len(seen)]


def test_a_row_full_of_braces_larger_than_a_read():
    rows = [{"v.a": "}" * 300_000, "v.b": 1}, {"v.a": "x}", "v.b": 2}]
    assert json_rows_with_step(json.dumps(rows).encode(), 100_000) == rows


def json_rows_with_step(body, step):
    return list(iter_json_rows(Trickle(body, step)))


@pytest.mark.parametrize(
    ("message", "retriable"),
    [
        ("Query was dropped from the queue after 600 seconds", True),
        ("Timed out waiting in the per-user Queue", True),
        ("queued too long", True),
        ("Table 'history' is locked", False),
        ("Unknown column 'queueing_time'", False),  # a word that only contains 'queue'
    ],
)
def test_only_a_query_dropped_from_lookers_queue_is_worth_another_try(message, retriable):
    assert isinstance(query_error(message), RetriableError) is retriable
