"""Merge queries (merged results) and the dashboards whose tiles show them.

Looker serves a merge query at `GET /merge_queries/{id}` (schema `MergeQuery`) and has no route
that runs one: a client runs each source query and merges the results itself. The emulator
therefore only stores merge queries; their source queries are ordinary saved queries.
"""

from __future__ import annotations

from typing import Any

from looker_emulator import content

MERGE_CAN = {"show": True, "create": True, "run": True}

#: Queries of the merged tiles; the filters some added queries carry make them lack rows.
MERGE_QUERIES: dict[str, dict[str, Any]] = {
    "revenue_by_day": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["order_items.created_date", "order_items.total_sale_price"],
        "sorts": ["order_items.created_date"],
        "limit": "500",
    },
    "sales_by_category": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["products.category", "order_items.count", "order_items.total_sale_price"],
        "sorts": ["products.category"],
        "limit": "500",
    },
    # No rows for two categories; a row per gender for the others (a category matches two rows).
    "returns_by_category_and_gender": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["products.category", "users.gender", "order_items.count"],
        "filters": {"order_items.status": "Returned", "products.category": "-Socks,-Swim"},
        "sorts": ["products.category", "users.gender"],
        "limit": "500",
    },
    "orders_by_time": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["order_items.created_time", "order_items.status", "order_items.count"],
        "filters": {"order_items.status": "-Cancelled"},
        "sorts": ["order_items.created_time", "order_items.status"],
        "limit": "500",
    },
    # Returned items only; the items of one order share a time, so a time can match two rows.
    "returned_categories_by_time": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["order_items.created_time", "products.category"],
        "filters": {"order_items.status": "Returned"},
        "sorts": ["order_items.created_time", "products.category"],
        "limit": "500",
    },
    # Returns by category with a custom measure and a table calculation of the source query.
    "return_share_by_category": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["products.category", "order_items.count", "returning_users", "return_share"],
        "filters": {"order_items.status": "Returned", "products.category": "-Socks,-Swim"},
        "sorts": ["products.category"],
        "limit": "500",
        "dynamic_fields": (
            '[{"category":"measure","measure":"returning_users","label":"Returning users",'
            '"based_on":"users.id","type":"count_distinct","_kind_hint":"measure",'
            '"_type_hint":"number"},'
            '{"category":"table_calculation","table_calculation":"return_share",'
            '"label":"Return share","expression":"${order_items.count} / '
            'sum(${order_items.count})","_kind_hint":"measure","_type_hint":"number"}]'
        ),
    },
    "count_by_status": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["order_items.status", "order_items.count"],
        "sorts": ["order_items.status"],
        "limit": "500",
    },
}


def _source(
    query: dict[str, Any], name: str, pairs: list[tuple[str, str]] | None
) -> dict[str, Any]:
    """A `MergeQuerySourceQuery`; `pairs` are (field in the merge, field of this query)."""
    return {
        "merge_fields": None
        if pairs is None
        else [{"field_name": onto, "source_field_name": own} for onto, own in pairs],
        "name": name,
        "query_id": query["id"],
        "query_slug": query["slug"],
    }


def _merge(mid: str, sources: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """A `MergeQuery` as `GET /merge_queries/{id}` returns it."""
    merge = {
        "can": MERGE_CAN,
        "column_limit": None,
        "dynamic_fields": None,
        "id": mid,
        "pivots": None,
        "result_maker_id": None,
        "sorts": [],
        "source_queries": sources,
        "total": False,
        "limit": None,
        "vis_config": {"type": "looker_grid"},
    }
    merge.update(kw)
    return merge


def merge_queries(queries: content.QueryStore) -> dict[str, dict[str, Any]]:
    """Merge queries by id: the merged tiles of dashboards 1, 3 (two), 4 and 5."""
    runs = queries.create(content.DASHBOARD_QUERIES["runs_by_day"])
    revenue = queries.create(MERGE_QUERIES["revenue_by_day"])
    sales = queries.create(MERGE_QUERIES["sales_by_category"])
    returns = queries.create(MERGE_QUERIES["returns_by_category_and_gender"])
    orders = queries.create(MERGE_QUERIES["orders_by_time"])
    returned = queries.create(MERGE_QUERIES["returned_categories_by_time"])
    statuses = queries.create(MERGE_QUERIES["count_by_status"])
    shares = queries.create(MERGE_QUERIES["return_share_by_category"])
    sales_vs_returns = [
        _source(sales, "Sales", None),
        _source(returns, "Returns", [("products.category", "products.category")]),
    ]
    return {
        "m-501": _merge(
            "m-501",
            [
                _source(runs, "Runs", None),
                _source(revenue, "Revenue", [("history.created_date", "order_items.created_date")]),
            ],
            result_maker_id="204",
        ),
        "601": _merge("601", sales_vs_returns, result_maker_id="301"),
        # The added query has a custom measure and a table calculation of its own (Looker
        # computes them with that query, before merging).
        "604": _merge(
            "604",
            [
                _source(sales, "Sales", None),
                _source(shares, "Return share", [("products.category", "products.category")]),
            ],
            result_maker_id="302",
        ),
        "603": _merge(
            "603",
            [
                _source(orders, "Orders", None),
                _source(
                    returned,
                    "Returned items",
                    [("order_items.created_time", "order_items.created_time")],
                ),
                _source(statuses, "All statuses", [("order_items.status", "order_items.status")]),
            ],
            result_maker_id="501",
        ),
        # A table calculation of the merge itself: Looker computes it after merging.
        "602": _merge(
            "602",
            sales_vs_returns,
            result_maker_id="402",
            dynamic_fields=(
                '[{"category":"table_calculation","expression":"${order_items.count_2} / '
                '${order_items.count}","label":"Return rate","table_calculation":"return_rate",'
                '"_kind_hint":"measure","_type_hint":"number"}]'
            ),
        ),
    }


def _merged_tile(
    eid: str,
    title: str,
    merge: dict[str, Any],
    queries: content.QueryStore,
    listen: list[dict[str, str]],
) -> dict[str, Any]:
    """A merged-results tile: `merge_result_id`, no query or Look, one filterable per source."""
    rid = str(merge["result_maker_id"])
    maker = content._result_maker(rid, None, [], merge_id=merge["id"])
    maker["filterables"] = []
    for source in merge["source_queries"]:
        query = queries.get(source["query_id"]) or {}
        maker["filterables"].append(
            {
                "model": query["model"],
                "view": query["view"],
                "name": source["name"],
                "listen": listen,
            }
        )
    return content._element(
        eid,
        eid[0],  # the emulator numbers a dashboard's tiles <dashboard id>01, <dashboard id>02...
        "vis",
        title,
        merge_result_id=merge["id"],
        result_maker=maker,
        result_maker_id=rid,
    )


def merge_dashboards(
    queries: content.QueryStore,
    merges: dict[str, dict[str, Any]],
    base: dict[str, Any],
    base_url: str,
) -> dict[str, dict[str, Any]]:
    """Dashboards `3` (two merged tiles, one with a source's custom fields), `4`, and `5`.

    Dashboard 4 has a query tile and a merge the tap refuses.

    Dashboard 5's merged tile has a time dimension in each query that an incremental spec can
    window on, and no dashboard filters.
    """
    created: dict[str, Any] = {
        "can": {"update": True, "destroy": True},
        "id": "31",
        "dashboard_id": "3",
        "name": "Created",
        "title": "Created",
        "type": "field_filter",
        "default_value": "2025-01-01 to 2025-07-01",
        "model": "thelook",
        "explore": "order_items",
        "dimension": "order_items.created_date",
        "field": None,
        "row": 0,
        "listens_to_filters": [],
        "allow_multiple_values": True,
        "required": False,
        "ui_config": {"type": "advanced", "display": "popover"},
    }
    listen = [{"dashboard_filter_name": "Created", "field": "order_items.created_date"}]
    revenue = queries.create(content.DASHBOARD_QUERIES["revenue_by_category"])
    d3 = dict(
        base,
        id="3",
        title="Sales and returns",
        content_metadata_id="23",
        slug=content._code("dash3", 22),
        description="A merged-results tile: sales by category with returns by category and gender",
        url=f"{base_url}/dashboards/3",
        dashboard_filters=[created],
        dashboard_elements=[
            _merged_tile("301", "Sales vs returns", merges["601"], queries, listen),
            _merged_tile("302", "Sales vs return share", merges["604"], queries, listen),
        ],
    )
    d4 = dict(
        d3,
        id="4",
        title="Return rates",
        content_metadata_id="24",
        slug=content._code("dash4", 22),
        description="A query tile and a merged tile with a table calculation of its own",
        url=f"{base_url}/dashboards/4",
        dashboard_filters=[dict(created, id="41", dashboard_id="4")],
        dashboard_elements=[
            content._element(
                "401",
                "4",
                "vis",
                "Revenue by category",
                query=revenue,
                query_id=revenue["id"],
                result_maker=content._result_maker("401", revenue, []),
                result_maker_id="401",
            ),
            _merged_tile("402", "Return rate", merges["602"], queries, listen),
        ],
    )
    d5 = dict(
        d3,
        id="5",
        title="Orders over time",
        content_metadata_id="25",
        slug=content._code("dash5", 22),
        description="A merged tile on order item times: returned items and counts by status",
        url=f"{base_url}/dashboards/5",
        dashboard_filters=[],
        dashboard_elements=[
            _merged_tile("501", "Orders and returns", merges["603"], queries, []),
        ],
    )
    return {"3": d3, "4": d4, "5": d5}
