"""What a query spec is: its JSON schema (the one list of keys), and the parsed `QuerySpec`.

`SPEC_SCHEMA` is the single description of the keys a spec may have. The tap's config schema
embeds it (so `--about`, `meltano.yml` and the Hub definition list every key, source keys
included), and the parser derives the keys it accepts from it.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th

from tap_looker_query.engine.formats import FORMATS
from tap_looker_query.looker.query import QueryBody
from tap_looker_query.schema import property_name
from tap_looker_query.specs.dynamic import DynamicField, dynamic_property

if t.TYPE_CHECKING:
    from collections.abc import Mapping

STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESULT_FORMATS = tuple(FORMATS)
#: Looker's row limit when a query sets none.
LOOKER_DEFAULT_LIMIT = 5000
DEFAULT_DAYS = 1
UNLIMITED = -1

_INT_OR_TEXT = {"type": ["integer", "string"]}

#: Keys that take a spec's query from somewhere else than its own model/explore/fields.
_SOURCE_PROPERTIES = (
    th.Property(
        "look_id",
        th.CustomType(_INT_OR_TEXT),
        description="Run a saved Look's query (its fields, filters, sorts, limit).",
    ),
    th.Property(
        "dashboard_id",
        th.CustomType(_INT_OR_TEXT),
        description="One stream per query tile of a dashboard, named <name>_<tile title>.",
    ),
    th.Property(
        "query_id", th.CustomType(_INT_OR_TEXT), description="Run a saved query by its id."
    ),
    th.Property("query_slug", th.StringType, description="Run a saved query by its slug."),
    th.Property(
        "preset",
        th.StringType,
        description="A ready-made System Activity spec: history, event, event_attribute, "
        "query, user, content_usage, look, dashboard.",
    ),
)

SPEC_SCHEMA = th.ObjectType(
    th.Property("name", th.StringType, description="Stream (and table) name, ^[a-z][a-z0-9_]*$."),
    th.Property("model", th.StringType, description="LookML model, e.g. system__activity."),
    th.Property("explore", th.StringType, description="Explore in the model, e.g. history."),
    th.Property("view", th.StringType, description="Looker's own name for 'explore'."),
    th.Property(
        "fields", th.ArrayType(th.StringType), description="Fields to select, as view.field."
    ),
    th.Property(
        "filters",
        th.ObjectType(additional_properties=th.StringType),
        description="Field name to Looker filter expression; ANDed.",
    ),
    th.Property("sorts", th.ArrayType(th.StringType), description="Sorts, e.g. 'view.field desc'."),
    th.Property(
        "limit",
        th.CustomType(_INT_OR_TEXT),
        description="Row limit per query (int or numeric string, -1 for unlimited).",
    ),
    th.Property("filter_expression", th.StringType, description="Looker custom filter."),
    th.Property(
        "pivots",
        th.ArrayType(th.StringType),
        description="Dimensions to pivot on (among 'fields'); rows come in long form, one "
        "per row and pivot value.",
    ),
    th.Property(
        "dynamic_fields",
        th.CustomType({"type": ["string", "array"]}),
        description="Custom fields and table calculations, as Looker stores them (JSON text "
        "or a list).",
    ),
    th.Property(
        "column_limit",
        th.CustomType(_INT_OR_TEXT),
        description="Most pivot values Looker returns (Looker's column_limit).",
    ),
    th.Property(
        "query_timezone",
        th.StringType,
        description="Time zone of this spec's query, overriding the query_timezone setting "
        "(a saved query's own zone is kept without it).",
    ),
    *_SOURCE_PROPERTIES,
    th.Property(
        "metadata",
        th.ObjectType(
            th.Property("datetime", th.StringType, description="Replication field (time)."),
            th.Property(
                "default_days",
                th.CustomType(_INT_OR_TEXT),
                description="Days to read on the first run when start_date is not set.",
            ),
            th.Property(
                "result_format",
                th.StringType,
                description=f"Result format to request: {' or '.join(RESULT_FORMATS)} "
                f"(default {RESULT_FORMATS[0]}).",
            ),
            th.Property("primary_keys", th.ArrayType(th.StringType), description="Key fields."),
            th.Property(
                "window_hours",
                th.CustomType(_INT_OR_TEXT),
                description="Window length for this spec, overriding the window_hours setting.",
            ),
            th.Property(
                "lookback_minutes",
                th.CustomType(_INT_OR_TEXT),
                description="Minutes re-read before the bookmark on each run, overriding the "
                "lookback_minutes setting.",
            ),
            additional_properties=True,
        ),
        description="looker_ingestion metadata: datetime, default_days, result_format, ...",
    ),
    additional_properties=True,
)

_SCHEMA = SPEC_SCHEMA.type_dict
#: Every key a spec may have, and every key of its `metadata`.
TOP_KEYS = frozenset(_SCHEMA["properties"])
METADATA_KEYS = frozenset(_SCHEMA["properties"]["metadata"]["properties"])
SOURCE_KEYS = tuple(prop.name for prop in _SOURCE_PROPERTIES)
#: The keys in a sentence, for the `queries` setting's description (and so the Hub's).
KEYS_SUMMARY = (
    f"Keys: {', '.join(_SCHEMA['properties'])} (one of {', '.join(SOURCE_KEYS)} replaces "
    f"model/explore/fields); metadata keys: "
    f"{', '.join(_SCHEMA['properties']['metadata']['properties'])}."
)
SavedKind = t.Literal["look_id", "dashboard_id", "query_id", "query_slug"]
ResultFormat = t.Literal["json", "csv"]


@dataclass(frozen=True)
class QuerySpec:
    """One configured Looker query, validated on its own."""

    name: str
    model: str
    explore: str
    fields: tuple[str, ...]
    filters: Mapping[str, str] = field(default_factory=dict)
    sorts: tuple[str, ...] = ()
    limit: int | None = None
    filter_expression: str | None = None
    datetime_field: str | None = None
    default_days: int = DEFAULT_DAYS
    result_format: str = RESULT_FORMATS[0]
    primary_keys: tuple[str, ...] = ()
    window_hours: int | None = None
    lookback_minutes: int | None = None
    origin: str = "queries"
    source: str = ""
    pivots: tuple[str, ...] = ()
    dynamic_fields: tuple[DynamicField, ...] = ()
    #: `dynamic_fields` as sent to Looker (JSON text), None without any.
    dynamic_json: str | None = None
    column_limit: int | None = None
    query_timezone: str | None = None

    @property
    def label(self) -> str:
        """How messages name this spec (and the Look or tile it comes from)."""
        return f"query '{self.name}'" + (f" ({self.source})" if self.source else "")

    @property
    def explore_id(self) -> str:
        """`model::explore`, as Looker writes it."""
        return f"{self.model}::{self.explore}"

    @property
    def is_incremental(self) -> bool:
        """Specs with `metadata.datetime` replicate incrementally; the rest are full-table."""
        return self.datetime_field is not None

    @property
    def is_manual_backfill(self) -> bool:
        """The spec's own filters name its datetime field: run that filter as given."""
        return self.datetime_field is not None and self.datetime_field in self.filters

    @property
    def replication_property(self) -> str | None:
        """The Singer property of the datetime field."""
        return property_name(self.datetime_field) if self.datetime_field else None

    @property
    def key_properties(self) -> list[str]:
        """The Singer key properties: `metadata.primary_keys`, then the pivot fields.

        A pivoted spec has one record per row and pivot value, so the pivot fields are part
        of the key; without keys of its own a spec has none (pivot values alone identify no
        record).
        """
        if not self.primary_keys:
            return []
        props = dict(self.properties)
        keys = [props.get(name, property_name(name)) for name in self.primary_keys]
        return keys + [props[name] for name in self.pivots if props[name] not in keys]

    @property
    def properties(self) -> list[tuple[str, str]]:
        """(Looker field, Singer property) for each field Looker returns, in order.

        LookML fields become `view_field`; custom fields and table calculations keep their
        Looker name (made valid, and unique with a `_2`... suffix); disabled ones are left
        out, as Looker computes no values for them.
        """
        dynamic = {item.name: item for item in self.dynamic_fields}
        out: list[tuple[str, str]] = []
        used: set[str] = set()
        for name in self.fields:
            item = dynamic.get(name)
            if item is not None and item.disabled:
                continue
            base = property_name(name) if item is None else dynamic_property(name)
            prop, counter = base, 2
            while prop in used:
                prop, counter = f"{base}_{counter}", counter + 1
            used.add(prop)
            out.append((name, prop))
        return out

    @property
    def has_table_calculations(self) -> bool:
        """Table calculations are computed by Looker only when the run asks for them."""
        return any(
            item.kind == "table_calculation" and not item.disabled for item in self.dynamic_fields
        )

    @property
    def run_format(self) -> str:
        """The result format read: `json_detail` when pivoted, else `metadata.result_format`.

        A pivoted result's `json_detail` metadata names each pivot value (`pivots[].data`).
        """
        return "json_detail" if self.pivots else self.result_format

    @property
    def sorts_by_datetime(self) -> tuple[str, ...]:
        """The spec's sorts with its datetime field first (windows continue from the last row)."""
        if self.datetime_field is None:
            return self.sorts
        rest = tuple(s for s in self.sorts if s.split()[0] != self.datetime_field)
        return (self.datetime_field, *rest)

    def body(
        self,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int,
        sorts: tuple[str, ...] | None = None,
        query_timezone: str,
        client_id: str | None = None,
    ) -> QueryBody:
        """The Looker query of this spec, with the filters, limit and sorts of one run."""
        return QueryBody(
            model=self.model,
            view=self.explore,
            fields=self.fields,
            filters=dict(self.filters if filters is None else filters),
            sorts=self.sorts if sorts is None else sorts,
            limit=limit,
            query_timezone=query_timezone,
            filter_expression=self.filter_expression,
            client_id=client_id,
            label=self.label,
            pivots=self.pivots,
            dynamic_fields=self.dynamic_json,
            column_limit=self.column_limit,
            server_table_calcs=self.has_table_calculations,
        )


@dataclass(frozen=True)
class SavedSpec:
    """A spec whose query lives in Looker: a Look, a dashboard, or a saved query.

    `overrides` holds the spec's own keys (fields, filters, sorts, limit, metadata...), applied
    over the saved query once it is fetched, and validated like an inline spec.
    """

    name: str
    kind: SavedKind
    ref: str
    overrides: Mapping[str, t.Any] = field(default_factory=dict)
    origin: str = "queries"

    @property
    def label(self) -> str:
        """How messages name this spec."""
        return f"query '{self.name}'"

    @property
    def describe(self) -> str:
        """`Look 5`, `dashboard 3`, `query 12`, `query slug abc`."""
        return {
            "look_id": f"Look {self.ref}",
            "dashboard_id": f"dashboard {self.ref}",
            "query_id": f"query {self.ref}",
            "query_slug": f"query slug {self.ref}",
        }[self.kind]
