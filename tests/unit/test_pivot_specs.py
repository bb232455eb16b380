"""Pivots and dynamic_fields in specs, and the long form of a json_detail result."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tap_looker_query.engine.formats import iter_json_detail_batches, table_rows
from tap_looker_query.errors import LookerQueryError
from tap_looker_query.specs.parse import parse_inline
from tap_looker_query.specs.sources import left_out

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "looker"

BASE = {
    "name": "sales",
    "model": "thelook",
    "explore": "order_items",
    "fields": ["order_items.created_date", "order_items.status", "order_items.count"],
}


def parsed(**keys):
    problems: list[str] = []
    spec = parse_inline({**BASE, **keys}, "queries[0]", problems)
    return spec, problems


def test_pivot_fields_join_the_spec_keys():
    spec, problems = parsed(
        pivots=["order_items.status"],
        metadata={"primary_keys": ["order_items.created_date"]},
    )
    assert problems == []
    assert spec.key_properties == ["order_items_created_date", "order_items_status"]
    assert spec.run_format == "json_detail"
    assert spec.body(limit=10, query_timezone="UTC").as_json()["pivots"] == ["order_items.status"]


def test_a_pivoted_spec_without_keys_has_none():
    spec, _ = parsed(pivots=["order_items.status"])
    assert spec.key_properties == []


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"pivots": ["order_items.month"]}, "key 'pivots' names 'order_items.month'"),
        ({"pivots": "order_items.status"}, "key 'pivots' must be a list"),
        ({"dynamic_fields": "[{"}, "key 'dynamic_fields' is not valid JSON"),
        ({"dynamic_fields": {"a": 1}}, "key 'dynamic_fields' must be a list of objects"),
        ({"dynamic_fields": [{"label": "x"}]}, "names no table_calculation, measure or dimension"),
        ({"column_limit": 0}, "key 'column_limit' must be a positive whole number"),
        ({"query_timezone": "Mars/Olympus"}, "key 'query_timezone': unknown time zone"),
        (
            {
                "pivots": ["order_items.created_date"],
                "metadata": {"datetime": "order_items.created_date"},
            },
            "which is a pivot",
        ),
    ],
)
def test_bad_pivot_and_dynamic_keys_are_named(keys, expected):
    spec, problems = parsed(**keys)
    assert spec is None
    assert any(expected in p and p.startswith("query 'sales'") for p in problems), problems


def test_custom_fields_keep_their_names_valid_and_unique_and_disabled_ones_go():
    dynamic = [
        {"table_calculation": "order_items_count", "expression": "1", "_type_hint": "number"},
        {"table_calculation": "Share %", "expression": "1", "_type_hint": "number"},
        {"table_calculation": "off", "expression": "1", "is_disabled": True},
        {"measure": "n_orders", "based_on": "order_items.order_id", "type": "count_distinct"},
    ]
    spec, problems = parsed(
        fields=[*BASE["fields"], "order_items_count", "Share %", "off", "n_orders"],
        dynamic_fields=json.dumps(dynamic),
    )
    assert problems == []
    assert spec.properties == [
        ("order_items.created_date", "order_items_created_date"),
        ("order_items.status", "order_items_status"),
        ("order_items.count", "order_items_count"),
        ("order_items_count", "order_items_count_2"),
        ("Share %", "share"),
        ("n_orders", "n_orders"),
    ]
    assert spec.has_table_calculations
    body = spec.body(limit=1, query_timezone="UTC")
    assert body.server_table_calcs
    assert json.loads(body.as_json()["dynamic_fields"]) == dynamic  # as Looker stores it


def test_left_out_parts_of_a_saved_query():
    query = {"fill_fields": ["a.b"], "total": True, "row_total": "right", "subtotals": []}
    assert left_out(query) == [
        "fill_fields (rows Looker adds for missing dimension values)",
        "column totals",
        "row totals",
    ]
    assert left_out({"total": False, "subtotals": None}) == []


def _long(payload):
    batches = list(iter_json_detail_batches(io.BytesIO(json.dumps(payload).encode()), size=2))
    return [row for batch in batches for row in batch], sum(table_rows(b) for b in batches)


#: Two rows of a pivoted json_detail result (shape of looker-open-source/components
#: packages/visualizations-adapters/src/fixtures/mockSdkPivotDataResponse.ts and mockPivots.ts,
#: commit 12cf1d9; values retyped, one table calculation and a totals column added).
PIVOTED = {
    "fields": {
        "dimensions": [{"name": "orders.created_date"}],
        "measures": [{"name": "orders.count"}, {"name": "orders.average_total"}],
        "table_calculations": [{"name": "share"}, {"name": "flat"}],
        "pivots": [{"name": "orders.status"}],
    },
    "pivots": [
        {"key": "cancelled", "data": {"orders.status": "cancelled"}, "is_total": False},
        {"key": "complete", "data": {"orders.status": "complete"}, "is_total": False},
        {"key": "$$$_row_total_$$$", "data": {"orders.status": None}, "is_total": True},
    ],
    "data": [
        {
            "orders.created_date": {"value": "2019-12-22", "links": []},
            "orders.count": {"cancelled": {"value": 1}, "complete": {"value": None}},
            "orders.average_total": {
                "cancelled": {"value": 79.5, "rendered": "$79.50"},
                "complete": {"value": None},
            },
            "share": {"cancelled": {"value": 0.5}, "complete": {"value": None}},
            "flat": {"value": 7},
        },
        {
            "orders.created_date": {"value": "2019-12-21"},
            "orders.count": {"cancelled": {"value": 2}, "complete": {"value": 6}},
            "orders.average_total": {"cancelled": {"value": None}, "complete": {"value": 71.02}},
            "share": {"cancelled": {"value": 0.5}, "complete": {"value": 1.0}},
            "flat": {"value": 8},
        },
        {
            "orders.created_date": {"value": "2019-12-20"},
            "orders.count": {"cancelled": {"value": 3}, "complete": {"value": 4}},
            "orders.average_total": {"cancelled": {"value": 1.0}, "complete": {"value": 2.0}},
            "share": {"cancelled": {"value": 0.1}, "complete": {"value": 0.2}},
            "flat": {"value": 9},
        },
    ],
}


def test_a_pivoted_json_detail_in_long_form():
    records, count = _long(PIVOTED)
    assert count == 3  # rows of Looker's table, not records
    row = "orders.created_date"
    assert records == [
        # the empty cell (complete on 12-22: every measure NULL) gives no record
        {
            row: "2019-12-22",
            "orders.status": "cancelled",
            "orders.count": 1,
            "orders.average_total": 79.5,
            "share": 0.5,
            "flat": 7,
        },
        {
            row: "2019-12-21",
            "orders.status": "cancelled",
            "orders.count": 2,
            "orders.average_total": None,
            "share": 0.5,
            "flat": 8,
        },
        {
            row: "2019-12-21",
            "orders.status": "complete",
            "orders.count": 6,
            "orders.average_total": 71.02,
            "share": 1.0,
            "flat": 8,
        },
        {
            row: "2019-12-20",
            "orders.status": "cancelled",
            "orders.count": 3,
            "orders.average_total": 1.0,
            "share": 0.1,
            "flat": 9,
        },
        {
            row: "2019-12-20",
            "orders.status": "complete",
            "orders.count": 4,
            "orders.average_total": 2.0,
            "share": 0.2,
            "flat": 9,
        },
    ]


def test_a_recorded_unpivoted_json_detail_reads_as_its_rows():
    body = json.loads((FIXTURES / "actions_json_detail_example.json").read_text())["body"]
    records, count = _long(body)
    assert count == len(body["data"]) == len(records)
    assert records == [{name: cell["value"] for name, cell in row.items()} for row in body["data"]]


def test_json_detail_errors_and_flags():
    with pytest.raises(LookerQueryError, match="SQL compilation error"):
        _long(
            {"data": [], "errors": [{"message": "x", "message_details": "SQL compilation error"}]}
        )
    batches = list(
        iter_json_detail_batches(
            io.BytesIO(
                json.dumps({**PIVOTED, "truncated": True, "columns_truncated": "true"}).encode()
            )
        )
    )
    assert batches[0].truncated
    assert batches[0].columns_truncated
