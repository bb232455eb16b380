"""A small LookML-like model: views, fields, explores and models, and their API 4.0 metadata.

Each field knows the SQLite expression that computes it (over table aliases named after views) and
how it is described by ``GET /lookml_models/{model}/explores/{explore}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# Timeframe -> (Looker type, time_interval, is_numeric, filter kind, SQL template over the local
# "YYYY-MM-DD HH:MM:SS" text ``{t}``). Filter kind "datetime" means a filter on this timeframe
# filters the underlying timestamp; other kinds filter the rendered value.
TIMEFRAMES: dict[str, tuple[str, dict[str, Any] | None, bool, str, str]] = {
    "raw": ("date_raw", None, False, "datetime", "{t}"),
    "time": ("date_time", {"name": "second", "count": 1}, False, "datetime", "{t}"),
    "date": ("date_date", {"name": "day", "count": 1}, False, "datetime", "substr({t}, 1, 10)"),
    "week": (
        "date_week",
        {"name": "week", "count": 1},
        False,
        "datetime",
        "date({t}, '-6 days', 'weekday 1')",
    ),
    "month": ("date_month", {"name": "month", "count": 1}, False, "datetime", "substr({t}, 1, 7)"),
    "quarter": (
        "date_quarter",
        {"name": "month", "count": 3},
        False,
        "datetime",
        "substr({t}, 1, 4) || '-Q' || ((CAST(substr({t}, 6, 2) AS INTEGER) + 2) / 3)",
    ),
    "year": (
        "date_year",
        {"name": "year", "count": 1},
        False,
        "datetime",
        "CAST(substr({t}, 1, 4) AS INTEGER)",
    ),
    "hour": ("date_hour", {"name": "hour", "count": 1}, False, "datetime", "substr({t}, 1, 13)"),
    "minute": (
        "date_minute",
        {"name": "minute", "count": 1},
        False,
        "datetime",
        "substr({t}, 1, 16)",
    ),
    "second": (
        "date_second",
        {"name": "second", "count": 1},
        False,
        "datetime",
        "substr({t}, 1, 19)",
    ),
    "hour_of_day": (
        "date_hour_of_day",
        None,
        True,
        "number",
        "CAST(substr({t}, 12, 2) AS INTEGER)",
    ),
    "day_of_week": (
        "date_day_of_week",
        None,
        False,
        "string",
        (
            "CASE CAST(strftime('%w', {t}) AS INTEGER) WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday' "
            "WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday' "
            "WHEN 5 THEN 'Friday' WHEN 6 THEN 'Saturday' END"
        ),
    ),
    "day_of_week_index": (
        "date_day_of_week_index",
        None,
        True,
        "number",
        "((CAST(strftime('%w', {t}) AS INTEGER) + 6) % 7)",
    ),
    "day_of_month": (
        "date_day_of_month",
        None,
        True,
        "number",
        "CAST(substr({t}, 9, 2) AS INTEGER)",
    ),
    "day_of_year": (
        "date_day_of_year",
        None,
        True,
        "number",
        "CAST(strftime('%j', {t}) AS INTEGER)",
    ),
    "month_num": (
        "date_month_num",
        None,
        True,
        "number",
        "CAST(substr({t}, 6, 2) AS INTEGER)",
    ),
    "month_name": (
        "date_month_name",
        None,
        False,
        "string",
        (
            "CASE CAST(substr({t}, 6, 2) AS INTEGER) WHEN 1 THEN 'January' WHEN 2 THEN 'February' "
            "WHEN 3 THEN 'March' WHEN 4 THEN 'April' WHEN 5 THEN 'May' WHEN 6 THEN 'June' "
            "WHEN 7 THEN 'July' WHEN 8 THEN 'August' WHEN 9 THEN 'September' "
            "WHEN 10 THEN 'October' WHEN 11 THEN 'November' WHEN 12 THEN 'December' END"
        ),
    ),
    "week_of_year": (
        "date_week_of_year",
        None,
        True,
        "number",
        "CAST(strftime('%W', {t}) AS INTEGER)",
    ),
    "quarter_of_year": (
        "date_quarter_of_year",
        None,
        False,
        "string",
        "'Q' || ((CAST(substr({t}, 6, 2) AS INTEGER) + 2) / 3)",
    ),
    "time_of_day": ("date_time_of_day", None, False, "string", "substr({t}, 12, 5)"),
}

# Duration interval -> (Looker type, SQL template over two UTC timestamps ``{a}``, ``{b}``).
DURATIONS: dict[str, tuple[str, str]] = {
    "day": (
        "duration_day",
        "CAST((julianday({b}) - julianday({a})) AS INTEGER)",
    ),
    "hour": (
        "duration_hour",
        "CAST(((julianday({b}) - julianday({a})) * 24) AS INTEGER)",
    ),
    "minute": (
        "duration_minute",
        "CAST(((julianday({b}) - julianday({a})) * 1440) AS INTEGER)",
    ),
}

MEASURE_TYPES_NUMERIC = {
    "count",
    "count_distinct",
    "sum",
    "sum_distinct",
    "average",
    "average_distinct",
    "median",
    "median_distinct",
    "percentile",
    "percentile_distinct",
    "number",
    "running_total",
    "percent_of_total",
    "percent_of_previous",
}

FILTER_TYPES = {
    "datetime": ["datetime", "advanced_filter_datetime"],
    "string": ["string", "advanced_filter_string"],
    "yesno": ["yesno", "advanced_filter_string"],
    "number": ["number", "advanced_filter_number"],
    "zipcode": ["zipcode", "advanced_filter_string"],
}

YESNO_ENUM = [{"label": "Yes", "value": "Yes"}, {"label": "No", "value": "No"}]


def humanize(name: str) -> str:
    """Turn a LookML name into Looker's default label (``created_time`` -> ``Created Time``)."""
    words = [w for w in name.split("_") if w]
    out = []
    for w in words:
        if w.lower() == "id":
            out.append("ID")
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


@dataclass
class QueryContext:
    """What a field's SQL may depend on: the query time zone and parameter values."""

    timezone: str = "UTC"
    parameters: dict[str, str] = field(default_factory=dict)

    def local(self, utc_sql: str) -> str:
        """SQL for a UTC timestamp expression rendered in the query time zone."""
        if self.timezone.upper() == "UTC":
            return utc_sql
        return f"lk_tz({utc_sql}, '{self.timezone}')"


@dataclass
class Field:
    """A Looker field (dimension, measure, filter-only field or parameter) of one view."""

    view: str
    short: str
    category: str
    type: str
    sql: str | Callable[[QueryContext], str] | None = None
    label_short: str | None = None
    view_label: str | None = None
    description: str | None = None
    hidden: bool = False
    primary_key: bool = False
    dimension_group: str | None = None
    group_label_short: str | None = None
    timeframe: str | None = None
    raw_sql: str | None = None
    time_interval: dict[str, Any] | None = None
    is_numeric: bool = False
    filter_kind: str = "string"
    enumerations: list[dict[str, Any]] | None = None
    lookml_sql: str | None = None
    measure_of: str | None = None
    distinct_key: str | None = None
    percentile: int | None = None
    allowed_values: list[str] | None = None
    default_value: str | None = None
    applies_to: str | None = None
    value_format_name: str | None = None

    @property
    def name(self) -> str:
        """The fully qualified ``view.field`` name."""
        return f"{self.view}.{self.short}"

    @property
    def label(self) -> str:
        """Looker's full label: view label + short label."""
        return f"{self.view_label_text} {self.label_short_text}"

    @property
    def label_short_text(self) -> str:
        """The short label (defaults to the humanized field name)."""
        return self.label_short or humanize(self.short)

    @property
    def view_label_text(self) -> str:
        """The view label (defaults to the humanized view name)."""
        return self.view_label or humanize(self.view)

    @property
    def is_post_sql(self) -> bool:
        """Whether the measure is computed over result rows (window functions)."""
        return self.type in {"running_total", "percent_of_total", "percent_of_previous"}

    def metadata(self) -> dict[str, Any]:
        """The ``LookmlModelExploreField`` object Looker sends for this field."""
        is_dim = self.category == "dimension"
        is_timeframe = self.time_interval is not None and self.timeframe not in (None, "raw")
        fill_style = None
        if self.enumerations is not None:
            fill_style = "enumeration"
        elif is_timeframe:
            fill_style = "range"
        can_filter = self.timeframe != "raw"
        sql = self.lookml_sql
        filter_types = [] if not can_filter else FILTER_TYPES.get(self.filter_kind, [])
        if self.category == "parameter":
            filter_types = []
        group_label = None
        variant = None
        if self.dimension_group:
            group_label = f"{humanize(self.group_label_short or '')} Date"
            if self.type.startswith("duration"):
                group_label = humanize(self.group_label_short or "")
            variant = self.label_short_text.removeprefix(
                humanize(self.group_label_short or "") + " "
            )
        return {
            "align": "right" if (self.is_numeric and self.category != "parameter") else "left",
            "can_filter": can_filter,
            "category": self.category,
            "default_filter_value": self.default_value,
            "description": self.description,
            "dimension_group": self.dimension_group,
            "enumerations": self.enumerations,
            "error": None,
            "field_group_label": group_label,
            "field_group_variant": variant,
            "fill_style": fill_style,
            "fiscal_month_offset": 0,
            "has_allowed_values": self.allowed_values is not None,
            "has_drills_metadata": False,
            "hidden": self.hidden,
            "is_filter": self.category == "filter",
            "is_fiscal": False,
            "is_numeric": self.is_numeric,
            "is_timeframe": is_timeframe,
            "can_time_filter": self.filter_kind == "datetime" and self.timeframe == "time",
            "time_interval": self.time_interval,
            "label": self.label,
            "label_from_parameter": None,
            "label_short": self.label_short_text,
            "lookml_link": None,
            "links": [],
            "map_layer": None,
            "measure": self.category == "measure",
            "name": self.name,
            "strict_value_format": False,
            "parameter": self.category == "parameter",
            "permanent": None,
            "primary_key": self.primary_key,
            "project_name": "emulator",
            "requires_refresh_on_sort": False,
            "scope": self.view,
            "sortable": self.category in ("dimension", "measure"),
            "source_file": f"{self.view}.view.lkml",
            "source_file_path": f"emulator/{self.view}.view.lkml",
            "sql": sql,
            "sql_case": None,
            "filters": None,
            "suggest_dimension": self.name,
            "suggest_explore": self.view,
            "suggestable": is_dim and self.filter_kind == "string",
            "suggestions": None,
            "synonyms": [],
            "tags": [],
            "type": self.type,
            "user_attribute_filter_types": filter_types,
            "value_format": None,
            "value_format_name": self.value_format_name,
            "view": self.view,
            "view_label": self.view_label_text,
            "dynamic": False,
            "week_start_day": "monday",
            "original_view": self.view,
            "times_used": 0,
            "datatype": "timestamp" if self.dimension_group and not is_timeframe else None,
            "convert_tz": None,
        }


@dataclass
class View:
    """A view: a SQL source aliased by its name, with its fields."""

    name: str
    table: str
    primary_key: str
    fields: list[Field] = field(default_factory=list)
    label: str | None = None

    def _add(self, f: Field) -> Field:
        if self.label and f.view_label is None:
            f.view_label = self.label
        self.fields.append(f)
        return f

    def col(self, column: str) -> str:
        """SQL for a column of this view's table."""
        return f'"{self.name}"."{column}"'

    def dimension(
        self,
        short: str,
        type_: str,
        sql: str | Callable[[QueryContext], str],
        *,
        lookml_sql: str | None = None,
        **kw: Any,
    ) -> Field:
        """Add a dimension (``type_`` is the LookML type: number, string, yesno, zipcode, ...)."""
        numeric = type_ in ("number", "distance")
        kind = {"number": "number", "distance": "number", "yesno": "yesno", "zipcode": "zipcode"}
        enum = YESNO_ENUM if type_ == "yesno" else None
        return self._add(
            Field(
                self.name,
                short,
                "dimension",
                type_,
                sql,
                is_numeric=numeric,
                filter_kind=kind.get(type_, "string"),
                enumerations=kw.pop("enumerations", enum),
                lookml_sql=lookml_sql or (sql if isinstance(sql, str) else None),
                **kw,
            )
        )

    def column(self, short: str, type_: str, column: str | None = None, **kw: Any) -> Field:
        """Add a dimension over one column (``${TABLE}.column``); yesno columns hold 0/1."""
        c = self.col(column or short)
        sql = f"CASE WHEN {c} THEN 'Yes' ELSE 'No' END" if type_ == "yesno" else c
        return self.dimension(short, type_, sql, lookml_sql=f"${{TABLE}}.{column or short} ", **kw)

    def tier(self, short: str, of: str, tiers: list[int]) -> tuple[Field, Field]:
        """Add an integer-style tier dimension and its hidden ``__sort_`` companion."""
        labels = [f"Below {tiers[0]}"]
        labels += [f"{a} to {b - 1}" for a, b in pairwise(tiers)]
        labels += [f"{tiers[-1]} or Above", "Undefined"]
        whens = [f"WHEN {of} < {tiers[0]} THEN '{labels[0]}'"]
        sort_whens = [f"WHEN {of} < {tiers[0]} THEN 0"]
        for i, (a, b) in enumerate(pairwise(tiers), start=1):
            whens.append(f"WHEN {of} >= {a} AND {of} < {b} THEN '{labels[i]}'")
            sort_whens.append(f"WHEN {of} >= {a} AND {of} < {b} THEN {i}")
        sql = f"CASE WHEN {of} IS NULL THEN 'Undefined' {' '.join(whens)} ELSE '{labels[-2]}' END"
        sort_sql = f"CASE WHEN {of} IS NULL THEN -1 {' '.join(sort_whens)} ELSE {len(tiers)} END"
        t = self._add(
            Field(
                self.name,
                short,
                "dimension",
                "tier",
                sql,
                filter_kind="string",
                enumerations=[{"label": x, "value": x} for x in labels],
                lookml_sql=of,
            )
        )
        s = self._add(
            Field(
                self.name,
                f"{short}__sort_",
                "dimension",
                "number",
                sort_sql,
                hidden=True,
                is_numeric=True,
                filter_kind="number",
                lookml_sql=of,
            )
        )
        return t, s

    def dimension_group(
        self,
        group: str,
        column: str | None,
        timeframes: Iterable[str],
        *,
        raw_sql: str | None = None,
        description: str | None = None,
    ) -> list[Field]:
        """Add a ``type: time`` dimension group; ``column`` holds UTC ``YYYY-MM-DD HH:MM:SS``."""
        raw = raw_sql or self.col(column or f"{group}_at")
        out = []
        for tf in timeframes:
            type_, interval, numeric, kind, template = TIMEFRAMES[tf]

            def sql(ctx: QueryContext, template: str = template, raw: str = raw) -> str:
                return template.format(t=ctx.local(raw))

            out.append(
                self._add(
                    Field(
                        self.name,
                        f"{group}_{tf}",
                        "dimension",
                        type_,
                        sql,
                        dimension_group=f"{self.name}.{group}",
                        group_label_short=group,
                        timeframe=tf,
                        raw_sql=raw,
                        time_interval=interval,
                        is_numeric=numeric,
                        filter_kind=kind,
                        hidden=tf == "raw",
                        description=description,
                        lookml_sql=f"${{TABLE}}.{column or group + '_at'} ",
                        label_short=f"{humanize(group)} {humanize(tf)}",
                    )
                )
            )
        return out

    def duration_group(self, group: str, start: str, end: str, intervals: Iterable[str]) -> None:
        """Add a ``type: duration`` dimension group between two UTC timestamp expressions."""
        for iv in intervals:
            type_, template = DURATIONS[iv]
            self._add(
                Field(
                    self.name,
                    f"{iv}s_{group}",
                    "dimension",
                    type_,
                    template.format(a=start, b=end),
                    dimension_group=f"{self.name}.{group}",
                    group_label_short=group,
                    is_numeric=True,
                    filter_kind="number",
                    lookml_sql=f"${{{start}}} / ${{{end}}}",
                    label_short=f"{humanize(iv)}s {humanize(group)}",
                )
            )

    def measure(
        self,
        short: str,
        type_: str,
        of: str | None = None,
        *,
        distinct_key: str | None = None,
        percentile: int | None = None,
        numeric: bool | None = None,
        **kw: Any,
    ) -> Field:
        """Add a measure; ``of`` is a SQL expression (aggregates) or a measure name (post-SQL).

        ``min``/``max`` are numeric unless ``numeric=False`` (a min/max over timestamps).
        """
        if numeric is None:
            numeric = type_ in MEASURE_TYPES_NUMERIC or type_ in ("min", "max")
        kind = "number" if numeric else ("yesno" if type_ == "yesno" else "string")
        if type_ in ("min", "max") and not numeric:
            kind = "datetime"
        if type_ == "date":
            kind = "datetime"
        return self._add(
            Field(
                self.name,
                short,
                "measure",
                type_,
                None,
                measure_of=of,
                distinct_key=distinct_key,
                percentile=percentile,
                is_numeric=numeric,
                filter_kind=kind,
                enumerations=YESNO_ENUM if type_ == "yesno" else None,
                lookml_sql=of,
                **kw,
            )
        )

    def filter_only(self, short: str, type_: str, applies_to: str, **kw: Any) -> Field:
        """Add a filter-only field (``category: filter``) that filters ``applies_to`` (a field)."""
        kind = {"date": "datetime", "number": "number", "yesno": "yesno"}.get(type_, "string")
        return self._add(
            Field(
                self.name,
                short,
                "filter",
                type_,
                None,
                filter_kind=kind,
                applies_to=applies_to,
                **kw,
            )
        )

    def parameter(self, short: str, allowed: list[str], default: str, **kw: Any) -> Field:
        """Add an ``unquoted`` parameter with allowed values."""
        return self._add(
            Field(
                self.name,
                short,
                "parameter",
                "unquoted",
                None,
                allowed_values=allowed,
                default_value=default,
                enumerations=[{"label": humanize(v), "value": v} for v in allowed],
                **kw,
            )
        )


@dataclass
class Join:
    """A many-to-one join of a view into an explore."""

    view: View
    on: str
    relationship: str = "many_to_one"
    type: str = "left_outer"


@dataclass
class Explore:
    """An explore: a base view plus joins."""

    name: str
    base: View
    joins: list[Join] = field(default_factory=list)
    label: str | None = None
    description: str | None = None
    hidden: bool = False
    group_label: str | None = None
    source: Any = None  # a synthetic row generator instead of a table (see datasets.synthetic)

    @property
    def views(self) -> list[View]:
        """The base view then the joined views."""
        return [self.base] + [j.view for j in self.joins]

    def fields_by_name(self) -> dict[str, Field]:
        """Every field reachable in this explore, keyed by ``view.field``."""
        return {f.name: f for v in self.views for f in v.fields}

    def view_of(self, name: str) -> View:
        """The view named ``name`` in this explore."""
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(name)


@dataclass
class Model:
    """A LookML model: a named set of explores."""

    name: str
    explores: dict[str, Explore]
    label: str | None = None
    internal: bool = False
    connection: str = "emulator_sqlite"

    def metadata(self) -> dict[str, Any]:
        """The ``LookmlModel`` object."""
        return {
            "name": self.name,
            "label": self.label or humanize(self.name),
            "project_name": "system__activity" if self.internal else self.name,
            "has_content": True,
            "allowed_db_connection_names": [self.connection],
            "unlimited_db_connections": False,
            "can": {"index": True, "show": True},
            "explores": [
                {
                    "name": e.name,
                    "description": e.description,
                    "label": e.label or humanize(e.name),
                    "hidden": e.hidden,
                    "group_label": e.group_label or (self.label or humanize(self.name)),
                    "can": {},
                }
                for e in self.explores.values()
            ],
        }


def explore_metadata(model: Model, explore: Explore) -> dict[str, Any]:
    """The ``LookmlModelExplore`` object for ``explore``."""
    cats: dict[str, list[dict[str, Any]]] = {
        "dimensions": [],
        "measures": [],
        "filters": [],
        "parameters": [],
    }
    key = {"dimension": "dimensions", "measure": "measures", "filter": "filters"}
    for v in explore.views:
        for f in v.fields:
            md = f.metadata()
            md["suggest_explore"] = explore.name
            cats[key.get(f.category, "parameters")].append(md)
    return {
        "id": f"{model.name}::{explore.name}",
        "name": explore.name,
        "description": explore.description,
        "label": explore.label or humanize(explore.name),
        "title": explore.label or humanize(explore.name),
        "scopes": [v.name for v in explore.views],
        "can_total": True,
        "can_develop": False,
        "can_see_lookml": False,
        "lookml_link": None,
        "can_save": True,
        "can_explain": False,
        "can_pivot_in_db": True,
        "can_subtotal": True,
        "has_timezone_support": True,
        "supports_cost_estimate": False,
        "connection_name": model.connection,
        "null_sort_treatment": "low",
        "files": [],
        "source_file": f"{model.name}.model.lkml",
        "project_name": model.metadata()["project_name"],
        "model_name": model.name,
        "view_name": explore.base.name,
        "hidden": explore.hidden,
        "sql_table_name": f"{explore.base.table} AS {explore.base.name}",
        "access_filter_fields": [],
        "access_filters": [],
        "aliases": [],
        "always_filter": [],
        "conditionally_filter": [],
        "index_fields": [],
        "sets": [],
        "tags": [],
        "errors": [],
        "fields": cats,
        "joins": [
            {
                "name": j.view.name,
                "dependent_fields": [],
                "fields": [],
                "foreign_key": None,
                "from": None,
                "outer_only": False,
                "relationship": j.relationship,
                "required_joins": [],
                "sql_foreign_key": None,
                "sql_on": j.on,
                "sql_table_name": j.view.table,
                "type": j.type,
                "view_label": j.view.label,
            }
            for j in explore.joins
        ],
        "group_label": explore.group_label,
        "supported_measure_types": [
            {
                "dimension_type": "number",
                "measure_types": ["count_distinct", "sum", "average", "min", "max", "median"],
            },
            {"dimension_type": "string", "measure_types": ["count_distinct", "list"]},
            {"dimension_type": "date_time", "measure_types": ["count_distinct", "min", "max"]},
        ],
        "always_join": [],
        "dialect_name": "sqlite",
    }


_FIELDS_TOKEN = re.compile(r"\s*([^,()\s]+|[(),])\s*")


def parse_fields_param(text: str) -> dict[str, Any]:
    """Parse Looker's ``fields`` parameter (``a,b(c,d(e)),f``) into a nested selection dict."""
    tokens = [t for t in _FIELDS_TOKEN.findall(text) if t]
    pos = 0

    def parse_list() -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == ")":
                return out
            if tok == ",":
                pos += 1
                continue
            pos += 1
            sub: dict[str, Any] | None = None
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                sub = parse_list()
                pos += 1  # ")"
            out[tok] = sub
        return out

    return parse_list()


def apply_fields_param(obj: Any, selection: dict[str, Any] | None) -> Any:
    """Keep only the selected attributes of ``obj`` (a dict or a list of dicts)."""
    if selection is None or "*" in selection:
        return obj
    if isinstance(obj, list):
        return [apply_fields_param(x, selection) for x in obj]
    if isinstance(obj, dict):
        return {k: apply_fields_param(obj[k], sub) for k, sub in selection.items() if k in obj}
    return obj
