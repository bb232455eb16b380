"""Result bodies: rows stream out; anything incomplete or malformed is an error, never data."""

from __future__ import annotations

import io

import pytest

from tap_looker_query.results import (
    LookerQueryError,
    ResultError,
    TruncatedResult,
    iter_csv_rows,
    iter_json_rows,
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
        (b"", ResultError, "empty body"),
        (b"<html><body>502 Bad Gateway</body></html>", ResultError, "non-JSON body"),
        (b'[{"v.id": 1}, {"v.id": 2, "v.na', TruncatedResult, "ended early"),
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
        (b"ID,Name\n1,a\n2,b", TruncatedResult, "cut off"),
        (b'ID,Name\n1,"a\n', TruncatedResult, "cut off"),
        (b"ID\n1\n", ResultError, "1 columns for 2 fields"),
        (b"", ResultError, "empty body"),
        (b'[{"looker_error": "boom"}]', LookerQueryError, "boom"),
        (b"<html>oops</html>", ResultError, "HTML page"),
    ],
)
def test_bad_csv_bodies(body, error, text):
    with pytest.raises(error, match=text):
        csv_rows(body)


def test_a_cut_csv_row_is_never_yielded():
    seen = []
    with pytest.raises(TruncatedResult):
        seen.extend(iter_csv_rows(Trickle(b"ID,Name\n1,a\n2,b"), FIELDS))
    assert seen == [{"v.id": "1", "v.name": "a"}]
