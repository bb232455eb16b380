"""Saved content: queries (immutable, de-duplicated), Looks and dashboards."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

QUERY_CAN = {
    "run": True,
    "see_results": True,
    "explore": True,
    "create": True,
    "show": True,
    "cost_estimate": True,
    "index": True,
    "see_lookml": True,
    "see_aggregate_table_lookml": True,
    "see_derived_table_lookml": True,
    "see_sql": True,
    "save": True,
    "generate_drill_links": True,
    "download": True,
    "download_unlimited": True,
    "use_custom_fields": True,
}
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _code(seed: str, n: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:n])


class QueryStore:
    """Queries by id; creating an identical definition returns the existing query."""

    def __init__(self, base_url: str) -> None:
        """Start empty; ``base_url`` builds share URLs."""
        self.base_url = base_url
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}
        self._by_slug: dict[str, str] = {}
        self._next = 1001
        self._lock = threading.Lock()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` (a normalized WriteQuery) and return the ``Query`` object."""
        key = json.dumps(body, sort_keys=True)
        with self._lock:
            qid = self._by_key.get(key)
            if qid is not None:
                return self._by_id[qid]
            qid = str(self._next)
            self._next += 1
            slug = _code(f"slug{qid}", 7)
            client_id = body.get("client_id") or _code(f"client{qid}", 22)
            q = {
                "can": QUERY_CAN,
                "id": qid,
                "model": body["model"],
                "view": body["view"],
                "fields": body.get("fields"),
                "pivots": body.get("pivots"),
                "fill_fields": body.get("fill_fields"),
                "filters": body.get("filters"),
                "filter_expression": body.get("filter_expression"),
                "sorts": body.get("sorts") or [],
                "limit": None if body.get("limit") is None else str(body["limit"]),
                "column_limit": body.get("column_limit"),
                "total": bool(body.get("total", False)),
                "row_total": body.get("row_total"),
                "subtotals": body.get("subtotals"),
                "vis_config": body.get("vis_config"),
                "filter_config": body.get("filter_config"),
                "visible_ui_sections": body.get("visible_ui_sections"),
                "slug": slug,
                "dynamic_fields": body.get("dynamic_fields"),
                "client_id": client_id,
                "share_url": f"{self.base_url}/x/{client_id}",
                "expanded_share_url": (
                    f"{self.base_url}/explore/{body['model']}/{body['view']}?qid={client_id}"
                ),
                "url": f"/explore/{body['model']}/{body['view']}?qid={client_id}",
                "query_timezone": body.get("query_timezone"),
                "has_table_calculations": "table_calculation" in str(body.get("dynamic_fields")),
            }
            self._by_id[qid] = q
            self._by_key[key] = qid
            self._by_slug[slug] = qid
            return q

    def get(self, qid: str) -> dict[str, Any] | None:
        """The query with id ``qid``."""
        return self._by_id.get(str(qid))

    def by_slug(self, slug: str) -> dict[str, Any] | None:
        """The query with slug ``slug``."""
        qid = self._by_slug.get(slug)
        return None if qid is None else self._by_id[qid]


def runnable(query: dict[str, Any]) -> dict[str, Any]:
    """The writable part of a stored ``Query`` (what a run uses)."""
    keys = (
        "model",
        "view",
        "fields",
        "pivots",
        "column_limit",
        "filters",
        "filter_expression",
        "sorts",
        "limit",
        "query_timezone",
        "dynamic_fields",
    )
    return {k: query[k] for k in keys if query.get(k) is not None}


FOLDER = {
    "name": "Shared",
    "parent_id": None,
    "id": "1",
    "content_metadata_id": "1",
    "created_at": "2025-01-01T00:00:00.000+00:00",
    "creator_id": "1",
    "child_count": 0,
    "external_id": None,
    "is_embed": False,
    "is_embed_shared_root": False,
    "is_embed_users_root": False,
    "is_personal": False,
    "is_personal_descendant": False,
    "is_shared_root": True,
    "is_users_root": False,
    "can": {"index": True, "show": True},
}

LOOK_DEFS: dict[str, tuple[str, dict[str, Any]]] = {
    "1": (
        "Query history (System Activity)",
        {
            "model": "system__activity",
            "view": "history",
            "fields": [
                "history.id",
                "history.created_time",
                "history.status",
                "history.source",
                "query.model",
                "user.id",
                "history.runtime",
            ],
            "filters": {"history.source": "-suggest"},
            "sorts": ["history.created_time", "history.id"],
            "limit": "5000",
            "query_timezone": "UTC",
        },
    ),
    "2": (
        "Sales by day, Q1 2025",
        {
            "model": "thelook",
            "view": "order_items",
            "fields": [
                "order_items.created_date",
                "order_items.status",
                "order_items.count",
                "order_items.total_sale_price",
            ],
            "filters": {"order_items.created_date": "2025-01-01 to 2025-04-01"},
            "sorts": ["order_items.created_date", "order_items.status"],
            "limit": "500",
            "query_timezone": "UTC",
        },
    ),
    "3": (
        "Returns and cancellations by day and category (pivoted)",
        {
            "model": "thelook",
            "view": "order_items",
            "fields": [
                "order_items.created_date",
                "products.category",
                "order_items.status",
                "order_items.count",
                "order_items.total_sale_price",
            ],
            "pivots": ["order_items.status"],
            "filters": {
                "order_items.status": "Returned,Cancelled",
                "order_items.created_date": "2025-01-01 to 2025-01-08",
            },
            "sorts": ["order_items.created_date", "products.category"],
            "limit": "500",
            "query_timezone": "UTC",
        },
    ),
    "4": (
        "Items by day and status, Jan-Feb 2025 (pivoted, limit 100)",
        {
            "model": "thelook",
            "view": "order_items",
            "fields": ["order_items.created_date", "order_items.status", "order_items.count"],
            "pivots": ["order_items.status"],
            "fill_fields": ["order_items.created_date"],
            "filters": {"order_items.created_date": "2025-01-01 to 2025-03-01"},
            "sorts": ["order_items.created_date"],
            "limit": "100",
            "query_timezone": "UTC",
        },
    ),
}

DASHBOARD_QUERIES: dict[str, dict[str, Any]] = {
    "runs_by_day": {
        "model": "system__activity",
        "view": "history",
        "fields": [
            "history.created_date",
            "history.source",
            "history.count",
            "history.average_runtime",
        ],
        "sorts": ["history.created_date desc"],
        "limit": "500",
    },
    "revenue_by_category": {
        "model": "thelook",
        "view": "order_items",
        "fields": ["products.category", "order_items.total_sale_price", "order_items.count"],
        "sorts": ["order_items.total_sale_price desc"],
        "limit": "50",
    },
}


def look_object(look_id: str, title: str, query: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A ``LookWithQuery`` object."""
    return {
        "can": {
            "index": True,
            "show": True,
            "copy": True,
            "run": True,
            "update": True,
            "destroy": True,
        },
        "content_metadata_id": look_id,
        "id": look_id,
        "title": title,
        "user_id": "1",
        "content_favorite_id": None,
        "created_at": "2025-06-01T10:00:00.000+00:00",
        "deleted": False,
        "deleted_at": None,
        "deleter_id": None,
        "description": f"Look {look_id} served by the emulator",
        "embed_url": f"{base_url}/embed/looks/{look_id}",
        "excel_file_url": f"{base_url}/looks/{look_id}.xlsx",
        "favorite_count": 0,
        "google_spreadsheet_formula": None,
        "image_embed_url": f"{base_url}/looks/{look_id}.png",
        "is_run_on_load": False,
        "last_accessed_at": None,
        "last_updater_id": "1",
        "last_viewed_at": None,
        "model": {"id": query["model"], "label": query["model"]},
        "public": False,
        "public_slug": None,
        "public_url": None,
        "query_id": query["id"],
        "short_url": f"/x/{query['slug']}",
        "folder": FOLDER,
        "folder_id": "1",
        "updated_at": "2025-06-01T10:00:00.000+00:00",
        "user_name": "API Emulator",
        "view_count": 3,
        "usage_count": 3,
        "is_owner_disabled": False,
        "query": query,
        "url": f"/looks/{look_id}",
    }


def _element(
    eid: str, dashboard_id: str, type_: str, title: str | None, **kw: Any
) -> dict[str, Any]:
    el = {
        "can": {"index": True, "show": True, "update": True, "destroy": True},
        "body_text": None,
        "body_text_as_html": None,
        "dashboard_id": dashboard_id,
        "dashboard_layout_id": None,
        "edit_uri": f"/dashboards/{dashboard_id}/elements/{eid}/edit",
        "id": eid,
        "look": None,
        "look_id": None,
        "lookml_link_id": None,
        "merge_result_id": None,
        "note_display": None,
        "note_state": None,
        "note_text": None,
        "note_text_as_html": None,
        "query": None,
        "query_id": None,
        "filter_id": None,
        "refresh_interval": None,
        "refresh_interval_to_i": None,
        "result_maker": None,
        "result_maker_id": None,
        "subtitle_text": None,
        "title": title,
        "title_hidden": False,
        "title_text": None,
        "type": type_,
        "alert_count": 0,
        "rich_content_json": None,
        "title_text_as_html": None,
        "subtitle_text_as_html": None,
        "extension_id": None,
        "aria_description": None,
    }
    el.update(kw)
    return el


def _result_maker(
    rid: str,
    query: dict[str, Any] | None,
    listen: list[dict[str, str]],
    merge_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": rid,
        "dynamic_fields": None,
        "filterables": []
        if query is None
        else [{"model": query["model"], "view": query["view"], "name": None, "listen": listen}],
        "sorts": None if query is None else query["sorts"],
        "merge_result_id": merge_id,
        "total": False,
        "query_id": None if query is None else query["id"],
        "sql_query_id": None,
        "query": query,
        "vis_config": {"type": "looker_grid"},
    }


def dashboard_objects(
    queries: QueryStore, looks: dict[str, dict[str, Any]], base_url: str
) -> dict[str, dict[str, Any]]:
    """Dashboards by id (each with its elements and filters)."""
    runs = queries.create(DASHBOARD_QUERIES["runs_by_day"])
    revenue = queries.create(DASHBOARD_QUERIES["revenue_by_category"])
    filters: list[dict[str, Any]] = [
        {
            "can": {"update": True, "destroy": True},
            "id": "11",
            "dashboard_id": "1",
            "name": "Created Date",
            "title": "Created Date",
            "type": "field_filter",
            "default_value": "after 2026-10-01",
            "model": "system__activity",
            "explore": "history",
            "dimension": "history.created_date",
            "field": None,
            "row": 0,
            "listens_to_filters": [],
            "allow_multiple_values": True,
            "required": False,
            "ui_config": {"type": "advanced", "display": "popover"},
        },
        {
            "can": {"update": True, "destroy": True},
            "id": "12",
            "dashboard_id": "1",
            "name": "Source",
            "title": "Source",
            "type": "field_filter",
            "default_value": "api4,dashboard",
            "model": "system__activity",
            "explore": "history",
            "dimension": "history.source",
            "field": None,
            "row": 1,
            "listens_to_filters": [],
            "allow_multiple_values": True,
            "required": False,
            "ui_config": {"type": "tag_list", "display": "popover"},
        },
    ]
    listen = [
        {"dashboard_filter_name": "Created Date", "field": "history.created_date"},
        {"dashboard_filter_name": "Source", "field": "history.source"},
    ]
    look1 = looks["1"]
    elements = [
        _element(
            "101",
            "1",
            "vis",
            "Runs by day",
            query=runs,
            query_id=runs["id"],
            result_maker=_result_maker("201", runs, listen),
            result_maker_id="201",
        ),
        _element(
            "102",
            "1",
            "vis",
            "History look",
            look=look1,
            look_id=look1["id"],
            result_maker=_result_maker("202", look1["query"], listen),
            result_maker_id="202",
        ),
        _element(
            "103",
            "1",
            "text",
            None,
            title_text="About this dashboard",
            body_text="Numbers come from **System Activity**, refreshed hourly.",
            body_text_as_html=(
                "<p>Numbers come from <strong>System Activity</strong>, refreshed hourly.</p>"
            ),
        ),
        _element(
            "104",
            "1",
            "vis",
            "Merged: runs vs revenue",
            merge_result_id="m-501",
            result_maker=_result_maker("204", None, [], merge_id="m-501"),
            result_maker_id="204",
        ),
        _element(
            "105",
            "1",
            "vis",
            "Revenue by category",
            query=revenue,
            query_id=revenue["id"],
            result_maker=_result_maker("205", revenue, []),
            result_maker_id="205",
        ),
    ]
    d1 = {
        "can": {
            "index": True,
            "show": True,
            "run": True,
            "update": True,
            "destroy": True,
            "download": True,
        },
        "content_favorite_id": None,
        "content_metadata_id": "21",
        "description": "System Activity overview with a Look tile, a text tile and a merged tile",
        "hidden": False,
        "id": "1",
        "model": None,
        "query_timezone": "UTC",
        "readonly": False,
        "refresh_interval": None,
        "refresh_interval_to_i": None,
        "folder": FOLDER,
        "title": "Usage overview",
        "user_id": "1",
        "slug": _code("dash1", 22),
        "preferred_viewer": "dashboards-next",
        "alert_sync_with_dashboard_filter_enabled": False,
        "chat_enabled": False,
        "background_color": None,
        "created_at": "2025-06-01T10:00:00.000+00:00",
        "crossfilter_enabled": False,
        "dashboard_elements": elements,
        "dashboard_filters": filters,
        "dashboard_layouts": [],
        "deleted": False,
        "deleted_at": None,
        "deleter_id": None,
        "edit_uri": "/dashboards/1/edit",
        "enable_viz_full_screen": True,
        "favorite_count": 0,
        "filters_bar_collapsed": False,
        "filters_location_top": True,
        "last_accessed_at": None,
        "last_viewed_at": None,
        "updated_at": "2025-06-01T10:00:00.000+00:00",
        "last_updater_id": "1",
        "last_updater_name": "API Emulator",
        "user_name": "API Emulator",
        "load_configuration": "wait",
        "lookml_link_id": None,
        "show_filters_bar": True,
        "show_title": True,
        "folder_id": "1",
        "text_tile_text_color": None,
        "tile_background_color": None,
        "tile_text_color": None,
        "title_color": None,
        "view_count": 7,
        "usage_count": 7,
        "is_owner_disabled": False,
        "url": f"{base_url}/dashboards/1",
        "preserve_desktop_layout": False,
    }
    del d1["model"]  # user-defined dashboards carry no model
    d2 = dict(
        d1,
        id="2",
        title="Revenue",
        content_metadata_id="22",
        slug=_code("dash2", 22),
        description=None,
        url=f"{base_url}/dashboards/2",
        dashboard_filters=[],
        dashboard_elements=[
            _element(
                "106",
                "2",
                "vis",
                "Revenue by category",
                query=revenue,
                query_id=revenue["id"],
                result_maker=_result_maker("206", revenue, []),
                result_maker_id="206",
            )
        ],
    )
    return {"1": d1, "2": d2, "6": _custom_fields_dashboard(queries, d1, base_url)}


#: Custom fields and table calculations of dashboard 3's first tile, as Looker stores them.
PRICE_BAND_DYNAMIC_FIELDS = [
    {
        "category": "dimension",
        "dimension": "price_band",
        "label": "Price band",
        "expression": 'if(${order_items.sale_price} >= 50, "high", "low")',
        "_kind_hint": "dimension",
        "_type_hint": "string",
    },
    {
        "category": "measure",
        "measure": "count_of_orders",
        "label": "Count of orders",
        "based_on": "order_items.order_id",
        "type": "count_distinct",
        "_kind_hint": "measure",
        "_type_hint": "number",
    },
    {
        "category": "table_calculation",
        "table_calculation": "share_of_band",
        "label": "Share of band",
        "expression": "${order_items.count} / sum(${order_items.count})",
        "value_format_name": "percent_1",
        "_kind_hint": "measure",
        "_type_hint": "number",
    },
    {
        "category": "table_calculation",
        "table_calculation": "many_orders",
        "label": "Many orders",
        "expression": "${count_of_orders} > 60",
        "_kind_hint": "measure",
        "_type_hint": "yesno",
    },
    {
        "category": "table_calculation",
        "table_calculation": "draft_ratio",
        "label": "Draft ratio",
        "expression": "${count_of_orders} / ${order_items.count}",
        "is_disabled": True,
        "_kind_hint": "measure",
        "_type_hint": "number",
    },
]

DASHBOARD_QUERIES["price_bands"] = {
    "model": "thelook",
    "view": "order_items",
    "fields": [
        "products.category",
        "price_band",
        "order_items.count",
        "count_of_orders",
        "share_of_band",
        "many_orders",
        "draft_ratio",
    ],
    "pivots": ["price_band"],
    "filters": {"order_items.created_date": "2025-01-01 to 2025-04-01"},
    "sorts": ["products.category"],
    "limit": "500",
    "total": True,
    "row_total": "right",
    "dynamic_fields": json.dumps(PRICE_BAND_DYNAMIC_FIELDS),
    "query_timezone": "UTC",
}
DASHBOARD_QUERIES["new_york_items"] = {
    "model": "thelook",
    "view": "order_items",
    "fields": [
        "order_items.id",
        "order_items.created_time",
        "order_items.sale_price",
        "price_with_tax",
    ],
    "filters": {"order_items.created_date": "2025-01-02"},
    "sorts": ["order_items.created_time", "order_items.id"],
    "limit": "200",
    "dynamic_fields": json.dumps(
        [
            {
                "category": "table_calculation",
                "table_calculation": "price_with_tax",
                "label": "Price with tax",
                "expression": "round(${order_items.sale_price} * 1.2, 2)",
                "_kind_hint": "dimension",
                "_type_hint": "number",
            }
        ]
    ),
    "query_timezone": "America/New_York",
}


def _custom_fields_dashboard(
    queries: QueryStore, template: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """Dashboard 6: a pivoted tile with custom fields and table calculations, and one more.

    The second tile has a table calculation and its own query time zone.
    """
    bands = queries.create(DASHBOARD_QUERIES["price_bands"])
    new_york = queries.create(DASHBOARD_QUERIES["new_york_items"])
    bands_maker = _result_maker("207", bands, [])
    bands_maker["dynamic_fields"] = bands["dynamic_fields"]
    york_maker = _result_maker("208", new_york, [])
    york_maker["dynamic_fields"] = new_york["dynamic_fields"]
    return dict(
        template,
        id="6",
        title="Price bands",
        content_metadata_id="26",
        slug=_code("dash6", 22),
        description="Pivots, custom fields and table calculations",
        url=f"{base_url}/dashboards/6",
        dashboard_filters=[],
        dashboard_elements=[
            _element(
                "107",
                "6",
                "vis",
                "Orders by price band",
                query=bands,
                query_id=bands["id"],
                result_maker=bands_maker,
                result_maker_id="207",
            ),
            _element(
                "108",
                "6",
                "vis",
                "Items in New York time",
                query=new_york,
                query_id=new_york["id"],
                result_maker=york_maker,
                result_maker_id="208",
            ),
        ],
    )
