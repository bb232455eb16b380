"""Types Looker documents and the tap used to get wrong (issue 14, item 4).

- `period_over_period` measures are numbers (docs "Period-over-period measures"; spec
  `LookmlModelExploreFieldPeriodOverPeriodParams.kind`: previous, difference, relative_change).
- `date_raw` and `convert_tz: no` fields are not converted to the query time zone (docs
  `convert_tz`: "values are displayed in the database time zone, but are filtered using the query
  time zone"), so they carry no offset the tap could name.
- `list` measures may arrive as a JSON array or as text; both become the same text.
- In the `json_bi` fallback, `min`/`max` follow the values of the response (JsonBiField has no
  `is_numeric`).
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest

from tap_looker_query.schema import (
    Kind,
    LookerField,
    ValueMismatchError,
    converter_for,
    kind_of,
    property_schema,
)
from tests.helpers import config_for, run_tap

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")


def json_type(field: LookerField) -> tuple[str, str | None]:
    kind = kind_of(field)
    assert kind is not None
    schema = property_schema(field, kind)
    return schema["type"][0], schema.get("format")


# period_over_period


@pytest.mark.parametrize("kind_param", ["previous", "difference", "relative_change"])
def test_period_over_period_measures_are_numbers(kind_param):
    # The docs' example: "Orders Last Year" shows 89 next to the current year's count.
    field = LookerField.from_api(
        {
            "name": "orders.count_last_year",
            "type": "period_over_period",
            "category": "measure",
            "is_numeric": True,
            "period_over_period_params": {"kind": kind_param, "period": "year"},
        }
    )
    assert json_type(field) == ("number", None)
    convert = converter_for(kind_of(field), UTC)
    assert convert(89) == 89
    assert convert(-0.125) == -0.125
    assert convert(None) is None


# date_raw and convert_tz: no


@pytest.mark.parametrize("tz", [UTC, NEW_YORK], ids=["UTC", "New_York"])
def test_date_raw_is_the_databases_text_without_an_invented_offset(tz):
    field = LookerField.from_api(
        {"name": "orders.created_raw", "type": "date_raw", "hidden": True, "is_timeframe": False}
    )
    assert json_type(field) == ("string", None)
    schema = property_schema(field, Kind.STRING)
    assert "does not convert it to the query time zone" in schema["description"]
    assert converter_for(kind_of(field), tz)("2024-01-15 09:30:00") == "2024-01-15 09:30:00"
    assert not field.is_time  # Looker cannot filter it (can_filter: false): no window on it


def test_a_convert_tz_no_timeframe_is_text_and_a_converted_one_keeps_its_offset():
    base = {"name": "events.local_created_time", "type": "date_time", "is_timeframe": True}
    unconverted = LookerField.from_api({**base, "convert_tz": False})
    assert json_type(unconverted) == ("string", None)
    assert not unconverted.is_time
    assert converter_for(kind_of(unconverted), NEW_YORK)("2024-07-15 09:30:00") == (
        "2024-07-15 09:30:00"
    )
    for data in ({**base, "convert_tz": True}, base):  # the default: Looker converts
        converted = LookerField.from_api(data)
        assert json_type(converted) == ("string", "date-time")
        assert converted.is_time
        convert = converter_for(kind_of(converted), NEW_YORK)
        assert convert("2024-07-15 09:30:00") == "2024-07-15T09:30:00-04:00"


def test_convert_tz_no_leaves_dates_and_numbers_as_they_were():
    for looker_type, expected in [
        ("date_date", ("string", "date")),
        ("date_year", ("integer", None)),
        ("date_month", ("string", None)),
    ]:
        field = LookerField(name="e.f", type=looker_type, convert_tz=False)
        assert json_type(field) == expected


# list


def test_a_list_measure_is_the_same_text_whether_looker_sends_an_array_or_a_string():
    field = LookerField(name="order_items.list_of_statuses", type="list", category="measure")
    assert json_type(field) == ("string", None)
    convert = converter_for(kind_of(field), UTC)
    assert convert(["Cancelled", "Complete", "Returned"]) == "Cancelled, Complete, Returned"
    assert convert("Cancelled, Complete, Returned") == "Cancelled, Complete, Returned"
    assert convert([1, 2.5, None]) == "1, 2.5"
    assert convert([]) == ""
    assert convert(None) is None


@pytest.mark.parametrize("value", [[["nested"]], [{"a": 1}], {"a": 1}, [True]])
def test_structures_that_are_not_a_flat_list_are_still_errors(value):
    with pytest.raises(ValueMismatchError):
        converter_for(Kind.STRING, UTC)(value)


# json_bi min/max


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (1.234, ("number", None)),
        (12, ("number", None)),
        ("2026-10-31 23:57:15", ("string", None)),
        (None, ("number", None)),  # nothing to look at: numeric, so a date fails loudly
        (True, ("string", None)),
    ],
)
def test_json_bi_min_max_follow_the_value_in_the_response(sample, expected):
    item = {"name": "history.max_runtime", "type": "max", "category": "measure"}
    assert json_type(LookerField.from_json_bi(item, "measure", sample)) == expected


def test_json_bi_keeps_is_numeric_when_looker_sends_it_and_ignores_values_elsewhere():
    item = {"name": "v.max_day", "type": "max", "category": "measure", "is_numeric": False}
    assert json_type(LookerField.from_json_bi(item, "measure", 3)) == ("string", None)
    dim = {"name": "v.code", "type": "string", "category": "dimension"}
    assert json_type(LookerField.from_json_bi(dim, "dimension", 3)) == ("string", None)


def test_the_json_bi_fallback_types_numeric_maxima_as_numbers(looker_emulator, caplog):
    """System Activity explores that answer 404 to lookml_model_explore are typed from json_bi;
    a numeric max stays a number, a max over a time stays text."""
    looker_emulator.faults.explore_404 = {"system__activity::history"}
    spec = {
        "name": "runtimes",
        "model": "system__activity",
        "explore": "history",
        "fields": ["history.max_runtime", "history.min_created_time", "history.count"],
    }
    with caplog.at_level(logging.WARNING):
        run = run_tap(config_for(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    assert any("typing fields from a one-row json_bi" in r.getMessage() for r in caplog.records)
    props = run.schema("runtimes")["schema"]["properties"]
    assert props["history_max_runtime"]["type"] == ["number", "null"]
    assert props["history_min_created_time"]["type"] == ["string", "null"]
    assert props["history_count"]["type"] == ["integer", "null"]
    [record] = run.records("runtimes")
    assert isinstance(record["history_max_runtime"], int | float)
    assert isinstance(record["history_min_created_time"], str)


def test_an_unconverted_time_cannot_be_the_replication_field():
    from tap_looker_query.discovery import check_against_explore  # noqa: PLC0415
    from tap_looker_query.specs.model import QuerySpec  # noqa: PLC0415

    spec = QuerySpec(
        name="s", model="m", explore="v", fields=("v.at_time",), datetime_field="v.at_time"
    )
    fields = {"v.at_time": LookerField(name="v.at_time", type="date_time", convert_tz=False)}
    [problem] = check_against_explore(spec, fields)
    assert "database time zone" in problem
    assert "convert_tz" in problem
