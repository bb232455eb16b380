"""Pivots in long form, custom fields and table calculations, through the emulator.

Every expected result here is computed from the emulator's data with plain, unpivoted queries
(or raw rows folded in the test), never with the emulator's pivot or table-calculation code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from looker_emulator.content import DASHBOARD_QUERIES, LOOK_DEFS
from tests.helpers import config_for, run_tap, run_tap_process

START = "2025-01-01T00:00:00+00:00"


def config(emulator, *specs, **settings):
    return config_for(emulator, *specs, **{"start_date": START, **settings})


def detail_runs(emulator):
    return [r for r in emulator.requests if r.path == "/api/4.0/queries/run/json_detail"]


def unpivoted(emulator, fields, filters, **kw):
    """Looker's unpivoted rows: one per row and pivot value that has data."""
    return emulator.query_rows("thelook", "order_items", fields, filters=filters, limit="-1", **kw)


def as_records(rows):
    return [{name.replace(".", "_"): value for name, value in row.items()} for row in rows]


def ordered(records, *keys):
    return sorted(records, key=lambda r: tuple(str(r[k]) for k in keys))


def test_a_pivoted_look_is_its_table_in_long_form(looker_emulator):
    look = LOOK_DEFS["3"][1]
    spec = {
        "name": "returns",
        "look_id": 3,
        "metadata": {"primary_keys": ["order_items.created_date", "products.category"]},
    }
    run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    rows = unpivoted(looker_emulator, look["fields"], look["filters"])
    # The fixture has what the test is about: two pivot values and empty cells.
    assert {row["order_items.status"] for row in rows} == {"Returned", "Cancelled"}
    cells = defaultdict(set)
    for row in rows:
        cells[row["order_items.created_date"], row["products.category"]].add(
            row["order_items.status"]
        )
    assert any(len(statuses) == 1 for statuses in cells.values())
    keys = ("order_items_created_date", "products_category", "order_items_status")
    assert ordered(run.records("returns"), *keys) == ordered(as_records(rows), *keys)
    schema = run.schema("returns")
    assert schema["key_properties"] == list(keys)
    types = {name: prop["type"][0] for name, prop in schema["schema"]["properties"].items()}
    assert types == {
        "order_items_created_date": "string",
        "products_category": "string",
        "order_items_status": "string",
        "order_items_count": "integer",
        "order_items_total_sale_price": "number",
    }
    (body,) = [r.body for r in detail_runs(looker_emulator)]
    assert body["pivots"] == ["order_items.status"]


def test_a_pivoted_inline_spec(looker_emulator):
    fields = [
        "products.category",
        "users.gender",
        "order_items.count",
        "order_items.average_sale_price",
    ]
    filters = {"order_items.created_month": "2025-02"}
    spec = {
        "name": "by_gender",
        "model": "thelook",
        "explore": "order_items",
        "fields": fields,
        "pivots": ["users.gender"],
        "filters": filters,
        "sorts": ["products.category"],
        "metadata": {"primary_keys": ["products.category"]},
    }
    run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    expected = as_records(unpivoted(looker_emulator, fields, filters))
    assert len({r["users_gender"] for r in expected}) >= 2
    keys = ("products_category", "users_gender")
    assert ordered(run.records("by_gender"), *keys) == ordered(expected, *keys)
    assert run.schema("by_gender")["key_properties"] == list(keys)
    assert [r.body["pivots"] for r in detail_runs(looker_emulator)] == [["users.gender"]]


def _bands_expected(emulator):
    """Dashboard 6's first tile, computed from raw item rows."""
    query = DASHBOARD_QUERIES["price_bands"]
    items = unpivoted(
        emulator,
        ["order_items.id", "products.category", "order_items.sale_price", "order_items.order_id"],
        query["filters"],
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    orders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        price = item["order_items.sale_price"]
        # if() with a NULL condition takes its else branch, as a SQL CASE does.
        band = "high" if price is not None and price >= 50 else "low"
        key = (item["products.category"], band)
        counts[key] += 1
        orders[key].add(item["order_items.order_id"])
    band_total: dict[str, int] = defaultdict(int)
    for (_category, band), count in counts.items():
        band_total[band] += count
    return [
        {
            "products_category": category,
            "price_band": band,
            "order_items_count": count,
            "count_of_orders": len(orders[category, band]),
            "share_of_band": count / band_total[band],
            "many_orders": len(orders[category, band]) > 60,
        }
        for (category, band), count in counts.items()
    ]


def test_a_tile_with_custom_fields_and_table_calculations_pivoted(looker_emulator, caplog):
    spec = {"name": "bands", "dashboard_id": 6}
    with caplog.at_level(logging.INFO):
        run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    stream = "bands_orders_by_price_band"
    expected = _bands_expected(looker_emulator)
    assert {r["many_orders"] for r in expected} == {True, False}  # both yesno values occur
    got = ordered(run.records(stream), "products_category", "price_band")
    want = ordered(expected, "products_category", "price_band")
    assert [{**r, "share_of_band": None} for r in got] == [
        {**r, "share_of_band": None} for r in want
    ]
    assert [r["share_of_band"] for r in got] == pytest.approx([r["share_of_band"] for r in want])
    props = run.schema(stream)["schema"]["properties"]
    assert {name: prop["type"][0] for name, prop in props.items()} == {
        "products_category": "string",
        "price_band": "string",
        "order_items_count": "integer",
        "count_of_orders": "integer",
        "share_of_band": "number",
        "many_orders": "boolean",
    }  # the disabled calculation (draft_ratio) is no property
    runs = detail_runs(looker_emulator)
    assert runs
    assert all(r.query.get("server_table_calcs") == "true" for r in runs)
    assert json.loads(runs[0].body["dynamic_fields"])[0]["dimension"] == "price_band"
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 1
    assert "bands_orders_by_price_band" in left_out[0]
    assert "column totals, row totals" in left_out[0]
    assert left_out[0].count("left out") == 1
    assert all(r.levelno == logging.INFO for r in caplog.records if "left out" in r.getMessage())


def test_a_saved_query_keeps_its_time_zone_and_a_table_calculation(looker_emulator):
    query = DASHBOARD_QUERIES["new_york_items"]
    run = run_tap(config(looker_emulator, {"name": "d6", "dashboard_id": 6}))
    assert run.exit_code == 0, run.failures
    rows = looker_emulator.query_rows(
        "thelook",
        "order_items",
        ["order_items.id", "order_items.created_time", "order_items.sale_price"],
        filters=query["filters"],
        sorts=query["sorts"],
        limit="-1",
        query_timezone="America/New_York",
    )
    zone = ZoneInfo("America/New_York")
    expected = [
        {
            "order_items_id": row["order_items.id"],
            "order_items_created_time": dt.datetime.fromisoformat(row["order_items.created_time"])
            .replace(tzinfo=zone)
            .isoformat(),
            "order_items_sale_price": row["order_items.sale_price"],
            "price_with_tax": round(row["order_items.sale_price"] * 1.2, 2),
        }
        for row in rows
    ]
    assert expected
    assert run.records("d6_items_in_new_york_time") == expected
    assert all(r["order_items_created_time"].endswith("-05:00") for r in expected)


def test_an_incremental_pivoted_spec_splits_windows_at_the_limit(looker_emulator, caplog):
    fields = ["order_items.created_time", "order_items.status", "order_items.count"]
    spec = {
        "name": "items",
        "model": "thelook",
        "explore": "order_items",
        "fields": fields,
        "pivots": ["order_items.status"],
        "limit": 150,
        "metadata": {
            "datetime": "order_items.created_time",
            "primary_keys": ["order_items.created_time"],
            "window_hours": 24 * 30,
        },
    }
    with caplog.at_level(logging.INFO):
        run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    rows = unpivoted(looker_emulator, fields, {})
    expected = [
        {
            "order_items_created_time": row["order_items.created_time"].replace(" ", "T")
            + "+00:00",
            "order_items_status": row["order_items.status"],
            "order_items_count": row["order_items.count"],
        }
        for row in rows
    ]
    keys = ("order_items_created_time", "order_items_status")
    records = run.records("items")
    assert len(records) == len(expected)  # nothing twice, nothing lost
    assert ordered(records, *keys) == ordered(expected, *keys)
    seconds_per_window = defaultdict(set)
    for row in rows:
        seconds_per_window[row["order_items.created_time"][:7]].add(row["order_items.created_time"])
    assert max(len(s) for s in seconds_per_window.values()) > 150  # windows must split
    splits = [r.getMessage() for r in caplog.records if "hit the row limit (150)" in r.getMessage()]
    assert splits
    # Each window query asked for 150 rows of Looker's pivoted table, never more.
    runs = detail_runs(looker_emulator)
    assert {r.query.get("limit") for r in runs} == {"150"}
    assert all(r.body["pivots"] == ["order_items.status"] for r in runs)
    assert len({r.body["filters"]["order_items.created_time"] for r in runs}) > len(splits)
    assert run.bookmark("items") == max(r["order_items_created_time"] for r in expected)


def test_a_pivoted_look_over_its_unpivoted_limit_loses_nothing(looker_emulator, caplog):
    look = LOOK_DEFS["4"][1]
    spec = {
        "name": "by_day",
        "look_id": 4,
        "metadata": {"primary_keys": ["order_items.created_date"]},
    }
    short = {**spec, "name": "by_day_short", "limit": 10}
    with caplog.at_level(logging.INFO):
        run = run_tap(config(looker_emulator, spec, short))
    assert run.exit_code == 0, run.failures
    rows = unpivoted(looker_emulator, look["fields"], look["filters"])
    days = {row["order_items.created_date"] for row in rows}
    assert len(rows) > int(look["limit"]) >= len(days)  # more unpivoted rows than the limit
    keys = ("order_items_created_date", "order_items_status")
    assert ordered(run.records("by_day"), *keys) == ordered(as_records(rows), *keys)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not [w for w in warnings if "'by_day'" in w]
    # A spec's own limit counts table rows too: ten days, every status of each; and it warns.
    assert len({r["order_items_created_date"] for r in run.records("by_day_short")}) == 10
    assert [w for w in warnings if "'by_day_short'" in w and "limit of 10" in w]
    infos = [r.getMessage() for r in caplog.records if "left out fill_fields" in r.getMessage()]
    assert len(infos) == 2  # once per spec


def test_discover_lists_every_tile_with_typed_schemas_and_test_checks_them(looker_emulator):
    # Every dashboard but 4, whose merged tile the tap refuses on purpose (its merge-level table
    # calculation: tests/integration/test_merged_results.py), so `--test` exits 1 for it.
    specs = [{"name": f"d{n}", "dashboard_id": n} for n in (1, 2, 3, 5, 6)]
    specs.append({"name": "look3", "look_id": 3})
    discovered = run_tap_process(config(looker_emulator, *specs), "--discover", timeout=120)
    assert discovered.exit_code == 0, discovered.stderr
    catalog = json.loads(discovered.stdout)
    streams = {s["tap_stream_id"]: s["schema"]["properties"] for s in catalog["streams"]}
    expected_tiles = {
        "d1_runs_by_day",
        "d1_history_look",
        "d1_revenue_by_category",
        "d1_merged_runs_vs_revenue",
        "d2_revenue_by_category",
        "d3_sales_vs_returns",
        "d3_sales_vs_return_share",
        "d5_orders_and_returns",
        "d6_orders_by_price_band",
        "d6_items_in_new_york_time",
        "look3",
    }
    assert expected_tiles <= set(streams)
    for properties in streams.values():
        assert properties
        assert all(prop.get("type") for prop in properties.values())
    assert streams["d6_orders_by_price_band"]["many_orders"]["type"] == ["boolean", "null"]
    assert streams["d6_items_in_new_york_time"]["order_items_created_time"]["format"] == (
        "date-time"
    )
    tested = run_tap_process(config(looker_emulator, *specs), "--test", timeout=120)
    assert tested.exit_code == 0, tested.stderr
    for name in expected_tiles:
        assert f"{name}: OK" in tested.stderr


def test_a_pivoted_tile_with_table_calculations_through_query_tasks(looker_emulator):
    spec = {"name": "bands", "dashboard_id": 6}
    run = run_tap(config(looker_emulator, spec, query_mode="async"))
    assert run.exit_code == 0, run.failures
    stream = "bands_orders_by_price_band"
    keys = ("products_category", "price_band")
    got = ordered(run.records(stream), *keys)
    want = ordered(_bands_expected(looker_emulator), *keys)
    assert [r["many_orders"] for r in got] == [r["many_orders"] for r in want]
    assert [r["share_of_band"] for r in got] == pytest.approx([r["share_of_band"] for r in want])
    tasks = [r.body for r in looker_emulator.requests if r.path == "/api/4.0/query_tasks"]
    detail = [t for t in tasks if t["result_format"] == "json_detail"]
    assert detail
    assert all(t["server_table_calcs"] is True for t in detail)


def test_custom_fields_without_a_type_hint_are_typed_from_the_result_metadata(looker_emulator):
    fields = ["products.category", "order_items.count", "busy", "label"]
    dynamic = [
        {"table_calculation": "busy", "expression": "${order_items.count} > 400"},
        {"table_calculation": "label", "expression": 'concat("n=", ${order_items.count})'},
    ]
    spec = {
        "name": "untyped",
        "model": "thelook",
        "explore": "order_items",
        "fields": fields,
        "dynamic_fields": dynamic,
        "sorts": ["products.category"],
    }
    run = run_tap(config(looker_emulator, spec))
    assert run.exit_code == 0, run.failures
    props = run.schema("untyped")["schema"]["properties"]
    assert props["busy"]["type"] == ["boolean", "null"]
    assert props["label"]["type"] == ["string", "null"]
    rows = looker_emulator.query_rows(
        "thelook", "order_items", fields[:2], sorts=["products.category"], limit="-1"
    )
    assert run.records("untyped") == [
        {
            "products_category": row["products.category"],
            "order_items_count": row["order_items.count"],
            "busy": row["order_items.count"] > 400,
            "label": f"n={row['order_items.count']}",
        }
        for row in rows
    ]
    probes = [r for r in looker_emulator.requests if r.path == "/api/4.0/queries/run/json_detail"]
    assert [r.query["limit"] for r in probes] == ["1"]  # discovery's one-row probe


def test_a_pivoted_result_from_lookers_cache_is_logged_with_spec_and_window(
    looker_emulator, caplog
):
    """A `json_detail` result says `from_cache`; Looker may answer from its cache although the
    tap asks for fresh results (issue 14): the tap says so at INFO, naming spec and window."""
    fields = ["order_items.created_time", "order_items.status", "order_items.count"]
    spec = {
        "name": "items",
        "model": "thelook",
        "explore": "order_items",
        "fields": fields,
        "pivots": ["order_items.status"],
        "metadata": {"datetime": "order_items.created_time", "window_hours": 24 * 365},
    }
    looker_emulator.faults.serve_from_cache()
    with caplog.at_level(logging.INFO):
        run = run_tap(config(looker_emulator, spec, max_concurrent_queries=1))
    assert run.exit_code == 0, run.failures
    assert len(run.records("items")) == len(unpivoted(looker_emulator, fields, {}))
    [line] = [r for r in caplog.records if "from its cache" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("query 'items', window [")
    runs = detail_runs(looker_emulator)
    assert runs
    assert all(r.query.get("cache") == "false" for r in runs)
