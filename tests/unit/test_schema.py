"""Looker types -> JSON Schema, and the value conversions that go with them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_looker_query.errors import ValueMismatchError
from tap_looker_query.schema import (
    KNOWN_TYPES,
    Kind,
    LookerField,
    converter_for,
    format_datetime,
    kind_of,
    property_name,
    property_schema,
)

UTC = dt.UTC

# Looker's own list of dimension types (lookml_model_explore's supported_measure_types)
# and its measure types.
DIMENSION_TYPES = """number distance string unquoted yesno location location_bin_level zipcode time
turtle_look date date_date date_day_of_year date_day_of_month date_day_of_week
date_day_of_week_index date_hour date_hour_of_day date_minute date_month date_month_num
date_month_number date_fiscal_month_num date_fiscal_month_number date_month_name date_mweek
date_quarter date_fiscal_quarter date_quarter_of_year date_fiscal_quarter_of_year date_raw
datetime date_time date_second date_millisecond date_microsecond date_time_of_day date_week
date_week_of_year date_hour2 date_hour3 date_hour4 date_hour6 date_hour8 date_hour12 date_minute2
date_minute3 date_minute4 date_minute5 date_minute6 date_minute10 date_minute12 date_minute15
date_minute20 date_minute30 date_millisecond2 date_millisecond4 date_millisecond5
date_millisecond8 date_millisecond10 date_millisecond20 date_millisecond25 date_millisecond40
date_millisecond50 date_millisecond100 date_millisecond125 date_millisecond200
date_millisecond250 date_millisecond500 date_year date_fiscal_year duration duration_year
duration_quarter duration_month duration_week duration_day duration_hour duration_minute
duration_second tier bin""".split()
MEASURE_TYPES = """average average_distinct count count_distinct list max median median_distinct
min percentile percentile_distinct sum sum_distinct period_over_period number string date yesno
percent_of_previous percent_of_total running_total""".split()


@pytest.mark.parametrize("looker_type", DIMENSION_TYPES + MEASURE_TYPES)
def test_every_type_looker_lists_is_mapped_deliberately(looker_type):
    assert looker_type in KNOWN_TYPES
    assert kind_of(LookerField(name="v.f", type=looker_type)) is not None


@pytest.mark.parametrize(
    ("looker_type", "kind"),
    [
        ("number", Kind.NUMBER),
        ("sum", Kind.NUMBER),
        ("duration_day", Kind.NUMBER),
        ("distance", Kind.NUMBER),
        ("count", Kind.INTEGER),
        ("count_distinct", Kind.INTEGER),
        ("date_year", Kind.INTEGER),
        ("date_hour_of_day", Kind.INTEGER),
        ("date_day_of_month", Kind.INTEGER),
        ("yesno", Kind.BOOLEAN),
        ("date_time", Kind.DATETIME),
        ("date_second", Kind.DATETIME),
        ("date_minute15", Kind.DATETIME),
        ("date_hour", Kind.DATETIME),
        ("date_raw", Kind.STRING),
        ("date_date", Kind.DATE),
        ("date_week", Kind.DATE),
        ("date_month", Kind.STRING),
        ("date_quarter", Kind.STRING),
        ("tier", Kind.STRING),
        ("zipcode", Kind.STRING),
        ("list", Kind.STRING),
    ],
)
def test_type_families(looker_type, kind):
    assert kind_of(LookerField(name="v.f", type=looker_type)) is kind


def test_min_and_max_follow_is_numeric():
    assert kind_of(LookerField(name="v.m", type="max", is_numeric=True)) is Kind.NUMBER
    assert kind_of(LookerField(name="v.m", type="max", is_numeric=False)) is Kind.STRING


def test_unknown_type_is_reported_as_unknown():
    assert kind_of(LookerField(name="v.f", type="custom_calendar_week")) is None


def test_property_schema_is_nullable_and_keeps_looker_name_and_label():
    field = LookerField(name="history.created_time", type="date_time", label="History Created Time")
    schema = property_schema(field, Kind.DATETIME)
    assert schema["type"] == ["string", "null"]
    assert schema["format"] == "date-time"
    assert schema["title"] == "History Created Time"
    assert "history.created_time" in schema["description"]
    assert property_name("history.created_time") == "history_created_time"


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (Kind.BOOLEAN, "Yes", True),
        (Kind.BOOLEAN, "No", False),
        (Kind.BOOLEAN, None, None),
        (Kind.NUMBER, 1.5, 1.5),
        (Kind.NUMBER, "1.5", 1.5),
        (Kind.NUMBER, "42", 42),
        (Kind.NUMBER, "", None),
        (Kind.INTEGER, 7, 7),
        (Kind.INTEGER, 7.0, 7),
        (Kind.INTEGER, "2024", 2024),
        (Kind.DATE, "2024-03-01", "2024-03-01"),
        (Kind.STRING, 'a, "b"\n🙂', 'a, "b"\n🙂'),
        (Kind.STRING, 5, "5"),
        (Kind.DATETIME, "2024-03-01 10:00:05", "2024-03-01T10:00:05+00:00"),
        (Kind.DATETIME, "2024-03-01 10:00:05.250", "2024-03-01T10:00:05.250000+00:00"),
        (Kind.DATETIME, "2024-03-01 10", "2024-03-01T10:00:00+00:00"),
        (Kind.DATETIME, "2024-03-01 10:15", "2024-03-01T10:15:00+00:00"),
        (Kind.DATETIME, None, None),
    ],
)
def test_conversions(kind, raw, expected):
    assert converter_for(kind, UTC)(raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (Kind.NUMBER, "Yes"),
        (Kind.NUMBER, True),
        (Kind.INTEGER, 1.5),
        (Kind.BOOLEAN, "maybe"),
        (Kind.BOOLEAN, 1),
        (Kind.DATE, "03/01/2024"),
        (Kind.DATETIME, "03/01/2024 10:00"),
        (Kind.DATETIME, "2024-13-01 10:00:00"),
        (Kind.DATETIME, 1709287205),
    ],
)
def test_wrong_values_are_errors_not_data(kind, raw):
    with pytest.raises(ValueMismatchError):
        converter_for(kind, UTC)(raw)


def test_datetimes_carry_the_query_time_zone_offset():
    convert = converter_for(Kind.DATETIME, ZoneInfo("America/New_York"))
    assert convert("2024-01-15 09:30:00") == "2024-01-15T09:30:00-05:00"
    assert convert("2024-07-15 09:30:00") == "2024-07-15T09:30:00-04:00"


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_utc_datetimes_sort_as_text_like_as_instants(moment):
    """Bookmarks are compared as strings by the SDK: the fixed format must keep order."""
    later = moment + dt.timedelta(microseconds=1)
    convert = converter_for(Kind.DATETIME, UTC)
    a = convert(moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
    b = convert(later.strftime("%Y-%m-%d %H:%M:%S.%f"))
    assert a < b
    assert dt.datetime.fromisoformat(a) == moment.replace(tzinfo=UTC)
    assert format_datetime(moment.replace(tzinfo=UTC)) == a
