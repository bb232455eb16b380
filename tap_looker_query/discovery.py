"""Discovery: each spec checked against Looker's field metadata, and its schema built from it.

One `lookml_model_explore` call per explore. Looker lists some System Activity explores but
answers 404 for their metadata (they are built on internal tables); their fields are then typed
from a one-row `json_bi` run of the spec's query, whose metadata describes each field.
"""

from __future__ import annotations

import typing as t

from tap_looker_query.errors import LookerError, NotFoundError, SpecError
from tap_looker_query.schema import (
    Kind,
    LookerField,
    is_unconverted_time,
    kind_of,
    property_schema,
)
from tap_looker_query.specs.merge import MergedSpec
from tap_looker_query.specs.parse import suggestion

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Mapping, Sequence

    from tap_looker_query.looker.query import QueryBody
    from tap_looker_query.specs.model import QuerySpec

Schema = dict[str, t.Any]


class MetadataClient(t.Protocol):
    """What discovery asks of Looker."""

    def explore_fields(self, model: str, explore: str) -> dict[str, LookerField]:
        """Every field of an explore; NotFoundError when Looker will not describe it."""
        ...

    def model_explores(self, model: str) -> list[str] | None:
        """A model's explores, or None when there is no such model."""
        ...

    def model_names(self) -> list[str]:
        """Every model the API user can see."""
        ...

    def json_bi_fields(self, body: QueryBody) -> dict[str, LookerField]:
        """Field metadata from a one-row `json_bi` run."""
        ...

    def result_fields(self, body: QueryBody) -> dict[str, LookerField]:
        """Field metadata of a one-row `json_detail` run (custom fields included)."""
        ...


def _sort_field(sort: str) -> str:
    return sort.split(maxsplit=1)[0] if sort.split() else sort


def _unknown_fields(spec: QuerySpec, explore_fields: Mapping[str, LookerField]) -> list[str]:
    """Fields, filters and sorts of the spec that the explore does not have."""
    where = f"{spec.label}: "
    known = explore_fields.keys()
    explore = spec.explore_id
    problems = [
        f"{where}field '{name}' is not in explore {explore}{suggestion(name, known)}"
        for name in spec.fields
        if name not in explore_fields
    ]
    problems += [
        f"{where}filter on '{name}', which is not in explore {explore}{suggestion(name, known)}"
        for name in spec.filters
        if name not in explore_fields
    ]
    for sort in spec.sorts:
        name = _sort_field(sort)
        if name not in explore_fields:
            problems.append(
                f"{where}sort on '{name}', which is not in explore {explore}"
                f"{suggestion(name, known)}"
            )
        elif name not in spec.fields:
            problems.append(f"{where}sort on '{name}', which is not among 'fields'")
    return problems


def _datetime_problems(spec: QuerySpec, explore_fields: Mapping[str, LookerField]) -> list[str]:
    """The replication field must be a time dimension."""
    looker_field = explore_fields.get(spec.datetime_field or "")
    if looker_field is None:
        return []
    where = f"{spec.label}: key 'metadata.datetime' is '{spec.datetime_field}'"
    if is_unconverted_time(looker_field):
        reason = (
            "which Looker leaves in the database time zone (date_raw or convert_tz: no) while "
            "windows are filtered in the query time zone; use a converted timeframe such as "
            "'..._time', or convert_tz: yes in LookML"
        )
        return [f"{where}, {reason}"]
    if kind_of(looker_field) is not Kind.DATETIME:
        timeframe = f"{str(spec.datetime_field).rsplit('_', 1)[0]}_time"
        return [
            (
                f"{where} of type '{looker_field.type}', not a time field; use a timeframe like "
                f"'{timeframe}'"
            )
        ]
    if looker_field.category == "measure":
        return [f"{where}, a measure; use a time dimension"]
    return []


def _shape_problems(spec: QuerySpec, fields: Mapping[str, LookerField]) -> list[str]:
    """Pivots must be dimensions; a custom measure's `based_on` must be in the explore."""
    problems = [
        f"{spec.label}: key 'pivots' names '{name}', a {fields[name].category}; Looker "
        "pivots on dimensions only"
        for name in spec.pivots
        if name in fields and fields[name].category != "dimension"
    ]
    problems += [
        f"{spec.label}: custom measure '{item.name}' is based on '{item.based_on}', which is "
        f"not in explore {spec.explore_id}{suggestion(str(item.based_on), fields)}"
        for item in spec.dynamic_fields
        if item.kind == "measure" and item.based_on and item.based_on not in fields
    ]
    return problems


def with_dynamic_fields(
    spec: QuerySpec, explore_fields: Mapping[str, LookerField]
) -> dict[str, LookerField]:
    """The explore's fields and the spec's custom fields and table calculations."""
    fields = dict(explore_fields)
    for item in spec.dynamic_fields:
        fields[item.name] = item.looker_field(explore_fields)
    return fields


def check_against_explore(
    spec: QuerySpec,
    explore_fields: Mapping[str, LookerField],
) -> list[str]:
    """Problems with a spec given its explore's fields (empty when the spec is valid)."""
    return (
        _unknown_fields(spec, explore_fields)
        + _datetime_problems(spec, explore_fields)
        + _shape_problems(spec, explore_fields)
    )


def schema_for(
    spec: QuerySpec, fields: Mapping[str, LookerField], logger: logging.Logger
) -> Schema:
    """The stream schema of a spec: one property per field, typed from Looker's metadata."""
    properties: dict[str, t.Any] = {}
    for name, prop in spec.properties:
        field = fields[name]
        kind = kind_of(field)
        if kind is None:
            logger.warning(
                "%s: field '%s' has Looker type '%s', which the tap does not know; "
                "it is typed as a string",
                spec.name,
                name,
                field.type,
            )
            kind = Kind.STRING
        properties[prop] = property_schema(field, kind)
    return {"type": "object", "properties": properties}


class Discovery:
    """Looks up each explore once and checks every spec against it."""

    def __init__(self, client: MetadataClient, query_timezone: str, logger: logging.Logger) -> None:
        """Ask `client`; json_bi fallback runs use `query_timezone`."""
        self._client = client
        self._tz_name = query_timezone
        self._logger = logger
        self._explores: dict[str, dict[str, LookerField] | None] = {}

    def schemas(self, specs: Sequence[QuerySpec]) -> dict[str, Schema]:
        """Schemas for specs from Looker's field metadata, after checking every spec.

        Raises:
            SpecError: any spec does not match Looker (all problems listed).
        """
        problems: list[str] = []
        schemas: dict[str, Schema] = {}
        for spec in specs:
            schema, found = self._schema(spec)
            if isinstance(spec, MergedSpec):
                schema, found = self._merged_schema(spec, schema, found)
            problems.extend(found)
            if schema is not None:
                schemas[spec.name] = schema
        if problems:
            raise SpecError(problems)
        return schemas

    def _schema(self, spec: QuerySpec) -> tuple[Schema | None, list[str]]:
        """The schema of one query's fields, or the problems with its fields."""
        if isinstance(spec, MergedSpec) and spec.refusal:
            return None, []
        fields, found = self._fields(spec)
        fields = with_dynamic_fields(spec, fields)
        found = found or check_against_explore(spec, fields) or self._untyped(spec, fields)
        return (None, found) if found else (schema_for(spec, fields, self._logger), [])

    def _merged_schema(
        self, spec: MergedSpec, schema: Schema | None, problems: list[str]
    ) -> tuple[Schema | None, list[str]]:
        """A merged tile's schema: its primary query's properties, then each added query's.

        A merge the tap cannot reproduce gets a schema without properties: its stream fails
        with the reason when it syncs, and the others go on.
        """
        if spec.refusal:
            self._logger.warning("%s; its stream will fail", spec.refusal)
            return {"type": "object", "properties": {}}, []
        for source in spec.sources:
            own, found = self._schema(source.spec)
            problems = problems + found
            if own is not None and schema is not None:
                for prop, merged in source.columns:
                    schema["properties"][merged] = own["properties"][prop]
        return (None if problems else schema), problems

    def _fields(self, spec: QuerySpec) -> tuple[dict[str, LookerField], list[str]]:
        """Fields of a spec's explore (one call per explore), or the problems finding it."""
        key = spec.explore_id
        if key not in self._explores:
            try:
                self._explores[key] = self._client.explore_fields(spec.model, spec.explore)
            except NotFoundError:
                self._explores[key] = None
        fields = self._explores[key]
        if fields is not None:
            return fields, []
        problems = self._missing_explore(spec)
        return ({}, problems) if problems else self._json_bi_fields(spec)

    def _untyped(self, spec: QuerySpec, fields: dict[str, LookerField]) -> list[str]:
        """Type the custom fields that say nothing of their type from a one-row run's metadata.

        A custom field without `_type_hint` (or a custom measure without `type`) is typed from
        what Looker reports of it in a `json_detail` result; it stays untyped (a string, with a
        warning) when Looker does not list it there either.
        """
        untyped = [item.name for item in spec.dynamic_fields if not fields[item.name].type]
        if not untyped or not any(name in spec.fields for name in untyped):
            return []
        body = spec.body(limit=1, sorts=(), query_timezone=spec.query_timezone or self._tz_name)
        try:
            reported = self._client.result_fields(body)
        except LookerError as exc:
            return [f"{spec.label}: Looker rejected the query on explore {spec.explore_id}: {exc}"]
        for name in untyped:
            if name in reported:
                fields[name] = reported[name]
        return []

    def _missing_explore(self, spec: QuerySpec) -> list[str]:
        """Why Looker has no metadata for the explore: no such model or explore, or neither."""
        explores = self._client.model_explores(spec.model)
        if explores is None:
            models = self._client.model_names()
            if spec.model not in models:
                return [
                    (
                        f"{spec.label}: key 'model': unknown model '{spec.model}'"
                        f"{suggestion(spec.model, models)}"
                    )
                ]
            return []  # an internal model Looker lists but will not describe: let the query decide
        if spec.explore not in explores:
            return [
                (
                    f"{spec.label}: key 'explore': model '{spec.model}' has no explore "
                    f"'{spec.explore}'{suggestion(spec.explore, explores)}"
                )
            ]
        return []

    def _json_bi_fields(self, spec: QuerySpec) -> tuple[dict[str, LookerField], list[str]]:
        """Fields typed from a one-row json_bi run (Looker listed the explore, not its fields)."""
        self._logger.warning(
            "%s: Looker has no field metadata for explore %s (404); typing fields from a "
            "one-row json_bi query",
            spec.name,
            spec.explore_id,
        )
        body = spec.body(limit=1, sorts=(), query_timezone=self._tz_name)
        try:
            fields = self._client.json_bi_fields(body)
        except LookerError as exc:
            return {}, [
                f"{spec.label}: Looker rejected the query on explore {spec.explore_id}: {exc}"
            ]
        # Looker ran the query with the spec's filters, so the filtered fields exist too.
        for name in spec.filters:
            fields.setdefault(name, LookerField(name=name, type="", category="filter"))
        return fields, []
