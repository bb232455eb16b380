"""Pivots, custom fields and table calculations, checked against plain unpivoted queries."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest
import requests

from looker_emulator.expressions import ExpressionError, evaluate, parse

if TYPE_CHECKING:
    from looker_emulator import LookerEmulator

FILTERS = {"order_items.created_month": "2025-02"}


def session(emu: LookerEmulator) -> requests.Session:
    s = requests.Session()
    token = s.post(
        f"{emu.base_url}/api/4.0/login",
        data={"client_id": emu.client_id, "client_secret": emu.client_secret},
    ).json()["access_token"]
    s.headers["Authorization"] = f"token {token}"
    return s


def run(emu: LookerEmulator, fmt: str, body: dict[str, Any], **params: str) -> requests.Response:
    base = {"model": "thelook", "view": "order_items", "filters": FILTERS}
    return session(emu).post(
        f"{emu.base_url}/api/4.0/queries/run/{fmt}", params=params, json={**base, **body}
    )


def cells(emu: LookerEmulator) -> dict[tuple[str, str], int]:
    """(category, status) -> count, from an unpivoted query."""
    rows = emu.query_rows(
        "thelook",
        "order_items",
        ["products.category", "order_items.status", "order_items.count"],
        filters=FILTERS,
    )
    return {(r["products.category"], r["order_items.status"]): r["order_items.count"] for r in rows}


PIVOTED = {
    "fields": ["products.category", "order_items.status", "order_items.count"],
    "pivots": ["order_items.status"],
    "sorts": ["products.category"],
}


def test_pivoted_json_detail_is_the_unpivoted_rows_folded(looker_emulator_session):
    emu = looker_emulator_session
    expected = cells(emu)
    body = run(emu, "json_detail", PIVOTED).json()
    statuses = sorted({status for _c, status in expected})
    assert [p["key"] for p in body["pivots"]] == statuses
    assert [p["data"] for p in body["pivots"]] == [{"order_items.status": s} for s in statuses]
    assert [f["name"] for f in body["fields"]["pivots"]] == ["order_items.status"]
    assert [f["name"] for f in body["fields"]["dimensions"]] == ["products.category"]
    categories = sorted({category for category, _s in expected})
    assert [row["products.category"]["value"] for row in body["data"]] == categories
    for row in body["data"]:
        category = row["products.category"]["value"]
        for status in statuses:
            assert row["order_items.count"][status]["value"] == expected.get((category, status))
    assert body["truncated"] is False


def test_pivoted_json_nests_by_pivot_field_and_csv_has_a_header_per_pivot(
    looker_emulator_session,
):
    emu = looker_emulator_session
    expected = cells(emu)
    rows = run(emu, "json", PIVOTED).json()
    for row in rows:
        for status, value in row["order_items.count"]["order_items.status"].items():
            assert value == expected.get((row["products.category"], status))
    lines = list(csv.reader(io.StringIO(run(emu, "csv", PIVOTED).text)))
    statuses = sorted({status for _c, status in expected})
    assert lines[0] == ["Order Items Status", *statuses]
    assert lines[1] == ["Products Category"] + ["Order Items Count"] * len(statuses)
    assert len(lines) == 2 + len(rows)


def test_the_row_limit_counts_table_rows_and_column_limit_pivot_values(looker_emulator_session):
    emu = looker_emulator_session
    body = run(emu, "json_detail", {**PIVOTED, "limit": "3", "column_limit": "2"}).json()
    assert len(body["data"]) == 3
    assert body["truncated"] is True
    assert body["columns_truncated"] is True
    assert len(body["pivots"]) == 2
    desc = run(emu, "json_detail", {**PIVOTED, "sorts": ["order_items.status desc"]}).json()
    keys = [p["key"] for p in desc["pivots"]]
    assert keys == sorted(keys, reverse=True)


DYNAMIC = [
    {
        "dimension": "band",
        "expression": 'if(${order_items.sale_price} >= 50, "high", "low")',
        "_type_hint": "string",
    },
    {"measure": "orders", "based_on": "order_items.order_id", "type": "count_distinct"},
    {
        "table_calculation": "share",
        "expression": "${order_items.count} / sum(${order_items.count})",
        "_type_hint": "number",
    },
    {"table_calculation": "big", "expression": "${orders} > 60", "_type_hint": "yesno"},
    {"table_calculation": "hidden", "expression": "1", "is_disabled": True},
]
CUSTOM = {
    "fields": [
        "products.category",
        "band",
        "order_items.count",
        "orders",
        "share",
        "big",
        "hidden",
    ],
    "pivots": ["band"],
    "dynamic_fields": json.dumps(DYNAMIC),
}


def test_custom_fields_and_table_calculations_per_pivot_column(looker_emulator_session):
    emu = looker_emulator_session
    items = emu.query_rows(
        "thelook",
        "order_items",
        ["order_items.id", "products.category", "order_items.sale_price", "order_items.order_id"],
        filters=FILTERS,
    )
    count: dict[tuple[str, str], int] = defaultdict(int)
    orders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        price = item["order_items.sale_price"]
        band = "high" if price is not None and price >= 50 else "low"
        count[item["products.category"], band] += 1
        orders[item["products.category"], band].add(item["order_items.order_id"])
    total = defaultdict(int)
    for (_c, band), n in count.items():
        total[band] += n
    body = run(emu, "json_detail", CUSTOM, server_table_calcs="true").json()
    assert [c["name"] for c in body["fields"]["table_calculations"]] == ["share", "big"]
    assert [m["name"] for m in body["fields"]["measures"]] == ["order_items.count", "orders"]
    for row in body["data"]:
        category = row["products.category"]["value"]
        for band in ("high", "low"):
            n = count.get((category, band))
            assert row["order_items.count"][band]["value"] == n
            assert row["orders"][band]["value"] == len(orders[category, band])
            assert row["share"][band]["value"] == pytest.approx(n / total[band])
            assert row["big"][band]["value"] == (
                "Yes" if len(orders[category, band]) > 60 else "No"
            )
        assert "hidden" not in row
    # Without server_table_calcs Looker leaves the calculations to the browser.
    plain = run(emu, "json_detail", CUSTOM).json()
    assert plain["fields"]["table_calculations"] == []
    assert "share" not in plain["data"][0]


def test_unsupported_expressions_answer_400(looker_emulator_session):
    bad = [{"table_calculation": "x", "expression": "offset(${order_items.count}, 1)"}]
    answer = run(
        looker_emulator_session,
        "json",
        {"fields": ["order_items.count", "x"], "dynamic_fields": json.dumps(bad)},
    )
    assert answer.status_code == 400
    assert "Invalid expression for x" in answer.json()["message"]


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        ("${a} + ${b} * 2", {"a": 1, "b": 3}, 7),
        ("(${a} + ${b}) / 0", {"a": 1, "b": 3}, None),
        ("round(${a} / 3, 2)", {"a": 1}, 0.33),
        ('if(${a} > 1 AND NOT ${c}, "y", "n")', {"a": 2, "c": False}, "y"),
        ("is_null(${a}) OR ${a} = 2", {"a": None}, True),
        ("coalesce(${a}, 5) - -1", {"a": None}, 6),
    ],
)
def test_expressions(text, row, expected):
    assert evaluate(parse(text), row, lambda _node: []) == expected


def test_column_functions_see_the_whole_column():
    column = [1, 2, None, 5]
    node = parse("${a} / sum(${a}) + mean(${a})")
    assert evaluate(node, {"a": 2}, lambda _n: column) == pytest.approx(2 / 8 + 8 / 3)
    with pytest.raises(ExpressionError):
        parse("pivot_offset(${a}, 1)")
