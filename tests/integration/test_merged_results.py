"""Merged-results tiles: each source query run, and the added ones left-joined onto the primary.

The expected records are computed here from each source query's own rows in the emulator's data
(`query_rows`), joined with a plain nested loop, not with the tap's join.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from tests.helpers import config_for, run_tap, run_tap_process

SINCE = "2025-01-01T00:00:00+00:00"


def config(emulator, *specs, **settings):
    return config_for(emulator, *specs, **{"start_date": SINCE, **settings})


def source_rows(emulator, merge_id, filters=None):
    """Each source query's rows (the emulator's data), with `filters` added to every query."""
    rows = []
    for source in emulator.merge_queries[merge_id]["source_queries"]:
        query = emulator.queries.get(source["query_id"])
        rows.append(
            emulator.query_rows(
                query["model"],
                query["view"],
                query["fields"],
                filters={**(query["filters"] or {}), **(filters or {})},
                sorts=query["sorts"],
                limit=query["limit"],
            )
        )
    return rows


def expected_join(primary, added):
    """Left join of each `(rows, on, columns)` onto `primary`; columns map field -> property.

    `on` is [(added field, primary field)]; a primary row with no match keeps None.
    """
    result = [{name.replace(".", "_"): value for name, value in row.items()} for row in primary]
    for rows, on, columns in added:
        joined = []
        for record in result:
            matches = [
                row
                for row in rows
                if all(
                    row[own] is not None and row[own] == record[onto.replace(".", "_")]
                    for own, onto in on
                )
            ]
            if not matches:
                joined.append({**record, **dict.fromkeys(columns.values())})
            for row in matches:
                joined.append({**record, **{prop: row[name] for name, prop in columns.items()}})
        result = joined
    return result


def test_a_merged_tile_left_joins_the_added_query_onto_the_primary(looker_emulator):
    run = run_tap(config(looker_emulator, {"name": "mr", "dashboard_id": 3}))
    assert run.exit_code == 0, run.failures
    created = {"order_items.created_date": "2025-01-01 to 2025-07-01"}  # the dashboard filter
    sales, returns = source_rows(looker_emulator, "601", created)
    columns = {"users.gender": "users_gender", "order_items.count": "order_items_count_2"}
    expected = expected_join(sales, [(returns, [("products.category",) * 2], columns)])
    assert run.records("mr_sales_vs_returns") == expected
    # What the fixture must hold for this to test anything: unmatched rows and repeats.
    categories = [row["products.category"] for row in returns]
    assert {row["products.category"] for row in sales} - set(categories)
    assert any(categories.count(name) == 2 for name in categories)
    unmatched = [r for r in expected if r["users_gender"] is None]
    assert unmatched
    assert all(r["order_items_count_2"] is None for r in unmatched)
    # Both source queries ran with the dashboard filter their tile listens to.
    bodies = [r.body for r in looker_emulator.requests if r.path == "/api/4.0/queries/run/json"]
    assert len(bodies) == 4  # sales for each of the dashboard's two merged tiles, and their added
    assert all(
        b["filters"]["order_items.created_date"] == created["order_items.created_date"]
        for b in bodies
    )


def test_an_unsupported_merge_fails_its_stream_naming_the_tile_and_the_rest_succeed(
    looker_emulator,
):
    run = run_tap_process(config(looker_emulator, {"name": "rr", "dashboard_id": 4}))
    assert run.exit_code == 1
    assert "1 stream(s) failed" in run.stderr
    assert (
        "rr_return_rate: query 'rr_return_rate' (dashboard 4 tile 'Return rate'): the tap "
        "cannot reproduce this merged-results tile" in run.stderr
    )
    assert "dynamic_fields" in run.stderr
    assert run.records("rr_return_rate") == []
    revenue = looker_emulator.query_rows(
        "thelook",
        "order_items",
        ["products.category", "order_items.total_sale_price", "order_items.count"],
        sorts=["order_items.total_sale_price desc"],
        limit="50",
    )
    assert [r["products_category"] for r in run.records("rr_revenue_by_category")] == [
        row["products.category"] for row in revenue
    ]


def test_discover_lists_every_merged_tile_with_a_typed_schema(looker_emulator):
    run = run_tap_process(
        config(
            looker_emulator,
            {"name": "usage", "dashboard_id": 1},
            {"name": "mr", "dashboard_id": 3},
            {"name": "orders", "dashboard_id": 5},
        ),
        "--discover",
    )
    assert run.exit_code == 0, run.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(run.stdout)["streams"]}
    assert "usage_merged_runs_vs_revenue" in streams
    assert "orders_orders_and_returns" in streams
    properties = streams["mr_sales_vs_returns"]["schema"]["properties"]
    assert list(properties) == [
        "products_category",
        "order_items_count",
        "order_items_total_sale_price",
        "users_gender",
        "order_items_count_2",
    ]
    types = {name: prop["type"] for name, prop in properties.items()}
    assert types == {
        "products_category": ["string", "null"],
        "order_items_count": ["integer", "null"],
        "order_items_total_sale_price": ["number", "null"],
        "users_gender": ["string", "null"],
        "order_items_count_2": ["integer", "null"],
    }
    revenue = streams["usage_merged_runs_vs_revenue"]["schema"]["properties"]
    assert revenue["order_items_total_sale_price"]["type"] == ["number", "null"]
    assert revenue["history_created_date"]["format"] == "date"


def test_test_checks_a_merged_tile_and_reports_one_it_cannot_reproduce(looker_emulator):
    good = run_tap_process(config(looker_emulator, {"name": "mr", "dashboard_id": 3}), "--test")
    assert good.exit_code == 0, good.stderr
    assert "mr_sales_vs_returns: OK (5 fields)" in good.stderr
    bad = run_tap_process(config(looker_emulator, {"name": "rr", "dashboard_id": 4}), "--test")
    assert bad.exit_code == 1
    assert "rr_revenue_by_category: OK" in bad.stderr
    assert "query 'rr_return_rate' (dashboard 4 tile 'Return rate')" in bad.stderr


def test_an_incremental_merged_tile_reads_windows_and_splits_at_the_limit(looker_emulator, caplog):
    spec = {
        "name": "orders",
        "dashboard_id": 5,
        "metadata": {"datetime": "order_items.created_time", "window_hours": 24 * 30},
    }
    with caplog.at_level(logging.INFO):
        run = run_tap(config(looker_emulator, spec))
    assert "hit the row limit (500)" in caplog.text
    assert run.exit_code == 0, run.failures
    records = run.records("orders_orders_and_returns")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    window = {"order_items.created_time": f"2025-01-01 00:00:00 to {now}"}
    # The windowed queries are read in full, window by window; the other one as Looker runs it.
    orders, returned = (
        source_rows_unlimited(looker_emulator, "603", index, window) for index in (0, 1)
    )
    statuses = source_rows(looker_emulator, "603")[2]
    assert len(orders) > 500  # more rows than the limit: windows split at it
    for rows in (orders, returned):
        for row in rows:
            row["order_items.created_time"] = as_instant(row["order_items.created_time"])
    expected = expected_join(
        orders,
        [
            (
                returned,
                [("order_items.created_time",) * 2],
                {"products.category": "products_category"},
            ),
            (
                statuses,
                [("order_items.status",) * 2],
                {"order_items.count": "order_items_count_3"},
            ),
        ],
    )
    assert records == expected
    assert None in [r["products_category"] for r in records]  # times with no returned item
    keys = [r["order_items_created_time"] + r["order_items_status"] for r in records]
    assert len(keys) > len(set(keys))  # a time matched two returned items
    assert run.bookmark("orders_orders_and_returns") == orders[-1]["order_items.created_time"]
    windowed = [
        r.body
        for r in looker_emulator.requests
        if r.path == "/api/4.0/queries/run/json" and "products.category" in r.body["fields"]
    ]
    assert len(windowed) > 1
    assert all(" to " in b["filters"]["order_items.created_time"] for b in windowed)


def source_rows_unlimited(emulator, merge_id, index, filters):
    source = emulator.merge_queries[merge_id]["source_queries"][index]
    query = emulator.queries.get(source["query_id"])
    return emulator.query_rows(
        query["model"],
        query["view"],
        query["fields"],
        filters={**(query["filters"] or {}), **filters},
        sorts=query["sorts"],
        limit="-1",
    )


def as_instant(text):
    return text.replace(" ", "T") + "+00:00"


def test_an_added_query_with_a_custom_measure_and_a_table_calculation(looker_emulator):
    """Looker computes a source query's custom fields and table calculations with that query,
    before merging: the tap runs it with them (`server_table_calcs`) and merges the results.
    Expected values are computed here from LookML fields only."""
    run = run_tap(config(looker_emulator, {"name": "mr", "dashboard_id": 3}))
    assert run.exit_code == 0, run.failures
    created = {"order_items.created_date": "2025-01-01 to 2025-07-01"}  # the dashboard filter
    returned = {"order_items.status": "Returned", "products.category": "-Socks,-Swim", **created}
    [sales, _returns] = source_rows(looker_emulator, "601", created)  # 604's primary is 601's
    counts = looker_emulator.query_rows(
        "thelook",
        "order_items",
        ["products.category", "order_items.count"],
        filters=returned,
        sorts=["products.category"],
        limit="500",
    )
    users = looker_emulator.query_rows(
        "thelook",
        "order_items",
        ["products.category", "users.id"],
        filters=returned,
        limit="-1",
    )
    total = sum(row["order_items.count"] for row in counts)
    added = [
        {
            "products.category": row["products.category"],
            "order_items.count": row["order_items.count"],
            "returning_users": len(
                {u["users.id"] for u in users if u["products.category"] == row["products.category"]}
            ),
            "return_share": row["order_items.count"] / total,
        }
        for row in counts
    ]
    columns = {
        "order_items.count": "order_items_count_2",
        "returning_users": "returning_users",
        "return_share": "return_share",
    }
    expected = expected_join(sales, [(added, [("products.category",) * 2], columns)])
    got = run.records("mr_sales_vs_return_share")
    assert [{**r, "return_share": None} for r in got] == [
        {**r, "return_share": None} for r in expected
    ]
    assert [r["return_share"] for r in got] == pytest.approx([r["return_share"] for r in expected])
    assert any(r["returning_users"] is None for r in got)  # categories without returns
    assert any(r["returning_users"] and r["returning_users"] > 1 for r in got)
    types = {
        k: v["type"][0]
        for k, v in run.schema("mr_sales_vs_return_share")["schema"]["properties"].items()
    }
    assert types == {
        "products_category": "string",
        "order_items_count": "integer",
        "order_items_total_sale_price": "number",
        "order_items_count_2": "integer",
        "returning_users": "integer",
        "return_share": "number",
    }
    share_runs = [
        r
        for r in looker_emulator.requests
        if r.path.startswith("/api/4.0/queries/run/") and "return_share" in json.dumps(r.body)
    ]
    assert share_runs
    assert all(r.query.get("server_table_calcs") == "true" for r in share_runs)
