"""Rows -> records: the typed (msgspec Struct) path and the dict path give the same records.

`RecordBuilder.decode` types a json batch in C when it fits the fields' families and falls back
to dicts otherwise; `records` converts either. Whatever path a batch takes, the records (or
the error naming the field) must be the same as the per-value converters give.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tap_looker_query.engine.formats import iter_json_batches
from tap_looker_query.engine.records import RecordBuilder
from tap_looker_query.errors import LookerQueryError, ValueMismatchError
from tap_looker_query.schema import Kind, converter_for, format_datetime

UTC = dt.UTC
PLAN = [
    ("v.id", "v__id", Kind.INTEGER),
    ("v.at", "v__at", Kind.DATETIME),
    ("v.day", "v__day", Kind.DATE),
    ("v.name", "v__name", Kind.STRING),
    ("v.amount", "v__amount", Kind.NUMBER),
    ("v.ok", "v__ok", Kind.BOOLEAN),
]

# Values Looker sends, and values it should not: each field gets all of them.
_TEXT = st.text(max_size=12)
_DATETIME_TEXT = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.isoformat(sep=" ", timespec=st_choice(d))
    ),
    st.sampled_from(
        [
            "2024-03-01 10",
            "2024-03-01 10:15",
            "2024-03-01T10:00:05Z",
            "2024-03-01 10:00:05+02:00",
            "2024-13-01 10:00:00",
            "2024-02-30 10:00:00",
            "2024-03-01x10:00:05",
            "2024-W01-1 10:00:00",
            "2024-03-01 10:00:5",
            "",
        ]
    ),
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.sampled_from(["Yes", "No", "yes", "42", "1.5", "2024-03-01", "2024-3-1", "0001-01-01"]),
    _DATETIME_TEXT,
)


#: Values of each family as Looker sends them (NULL included): these decode typed.
_GOOD = {
    Kind.INTEGER: st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    Kind.NUMBER: st.one_of(
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    Kind.STRING: st.one_of(st.none(), _TEXT),
    Kind.BOOLEAN: st.sampled_from([None, "Yes", "No"]),
    Kind.DATE: st.one_of(st.none(), st.dates().map(dt.date.isoformat)),
    Kind.DATETIME: st.one_of(
        st.none(),
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
            lambda d: d.isoformat(sep=" ", timespec=st_choice(d))
        ),
    ),
}


def st_choice(moment: dt.datetime) -> str:
    return "microseconds" if moment.microsecond else "seconds"


def _rows_json(rows: list[dict[str, object]]) -> bytes:
    return json.dumps(rows).encode()


def _expected(rows: list[dict[str, object]], tz: dt.tzinfo) -> list[dict[str, object]] | str:
    """The records from the per-value converters, or the first error's text."""
    convs = [(name, prop, converter_for(kind, tz)) for name, prop, kind in PLAN]
    out = []
    for row in rows:
        record = {}
        for name, prop, conv in convs:
            if name not in row:
                return f"a row lacks the selected field '{name}'"
            try:
                record[prop] = conv(row[name])
            except ValueMismatchError as exc:
                return f"field '{name}': {exc}"
        out.append(record)
    return out


def _built(data: bytes, tz: dt.tzinfo) -> tuple[list[dict[str, object]] | str, bool]:
    builder = RecordBuilder(PLAN, tz)
    rows = builder.decode(data)
    typed = bool(rows) and type(rows[0]) is builder.row_type
    try:
        return builder.records(rows), typed
    except ValueMismatchError as exc:
        return str(exc), typed


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({name: _VALUES for name, _p, _k in PLAN}), max_size=4),
    st.sampled_from([UTC, ZoneInfo("America/New_York")]),
)
def test_typed_and_dict_paths_agree_with_the_converters(rows, tz):
    data = _rows_json(rows)
    got, typed = _built(data, tz)
    event(f"typed path: {typed}")
    assert got == _expected(json.loads(data), tz)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({name: _GOOD[kind] for name, _p, kind in PLAN}),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([UTC, ZoneInfo("America/New_York")]),
)
def test_well_typed_rows_take_the_typed_path_and_match_the_converters(rows, tz):
    data = _rows_json(rows)
    got, typed = _built(data, tz)
    assert typed
    assert got == _expected(json.loads(data), tz)


def _good_row(i: int = 1) -> dict[str, object]:
    return {
        "v.id": i,
        "v.at": "2024-03-01 10:00:05",
        "v.day": "2024-03-01",
        "v.name": 'naïve, "quoted"',
        "v.amount": 1.5,
        "v.ok": "Yes",
        "v.extra": "ignored",
    }


def test_rows_of_the_expected_types_decode_typed():
    builder = RecordBuilder(PLAN, UTC)
    rows = builder.decode(_rows_json([_good_row(1), {**_good_row(2), "v.ok": None}]))
    assert all(type(row) is builder.row_type for row in rows)
    assert builder.records(rows) == [
        {
            "v__id": 1,
            "v__at": "2024-03-01T10:00:05+00:00",
            "v__day": "2024-03-01",
            "v__name": 'naïve, "quoted"',
            "v__amount": 1.5,
            "v__ok": True,
        },
        {
            "v__id": 2,
            "v__at": "2024-03-01T10:00:05+00:00",
            "v__day": "2024-03-01",
            "v__name": 'naïve, "quoted"',
            "v__amount": 1.5,
            "v__ok": None,
        },
    ]


def test_a_batch_of_other_types_falls_back_to_dicts_and_stays_there():
    builder = RecordBuilder(PLAN, UTC)
    odd = {**_good_row(), "v.amount": "2.25"}  # a number sent as text
    rows = builder.decode(_rows_json([odd]))
    assert type(rows[0]) is dict
    assert builder.records(rows)[0]["v__amount"] == 2.25
    later = builder.decode(_rows_json([_good_row()]))
    assert type(later[0]) is dict  # no second failed attempt per batch
    assert builder.records(later)[0]["v__at"] == "2024-03-01T10:00:05+00:00"


def test_a_missing_field_is_named():
    builder = RecordBuilder(PLAN, UTC)
    row = _good_row()
    del row["v.day"]
    with pytest.raises(ValueMismatchError, match=r"lacks the selected field 'v\.day'"):
        builder.records(builder.decode(_rows_json([row])))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("v.at", "2024-13-01 10:00:00", r"field 'v\.at': expected a datetime"),
        ("v.day", "2024-02-30", r"field 'v\.day': expected a date"),
        ("v.ok", "maybe", r"field 'v\.ok': expected \"Yes\" or \"No\""),
    ],
)
def test_a_bad_value_in_a_typed_batch_is_named(field, value, message):
    builder = RecordBuilder(PLAN, UTC)
    rows = builder.decode(_rows_json([_good_row(1), {**_good_row(2), field: value}]))
    assert type(rows[0]) is builder.row_type  # a well-typed string, a bad datetime
    with pytest.raises(ValueMismatchError, match=message):
        builder.records(rows)


def test_looker_error_is_still_recognised_with_typed_decoding():
    builder = RecordBuilder(PLAN, UTC)
    body = io.BytesIO(b'[{"looker_error": "SQL Error: relation does not exist"}]')
    with pytest.raises(LookerQueryError, match="relation does not exist"):
        list(iter_json_batches(body, builder.decode))


def test_incomplete_json_is_not_mistaken_for_a_type_mismatch():
    builder = RecordBuilder(PLAN, UTC)
    with pytest.raises(msgspec.DecodeError):
        builder.decode(_rows_json([_good_row()])[:-10])
    rows = builder.decode(_rows_json([_good_row()]))
    assert type(rows[0]) is builder.row_type  # the typed path is still on


def test_duplicate_fields_use_the_dict_path():
    plan = [("v.id", "a", Kind.INTEGER), ("v.id", "b", Kind.INTEGER)]
    builder = RecordBuilder(plan, UTC)
    rows = builder.decode(b'[{"v.id": 3}]')
    assert builder.records(rows) == [{"a": 3, "b": 3}]


def test_format_datetime_keeps_four_digit_years_and_minute_offsets():
    assert format_datetime(dt.datetime(1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0001-02-03T04:05:06+00:00"
    amsterdam_1900 = dt.datetime(1900, 1, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert format_datetime(amsterdam_1900) == "1900-01-01T12:00:00+00:19"  # LMT +00:19:32
