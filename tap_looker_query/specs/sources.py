"""Where a spec's query comes from: inline, or saved in Looker (a Look, a dashboard, a query).

`RESOLVERS` maps each source key to the function that fetches its query from Looker and turns
it into specs; a new source kind is one entry. Presets need no Looker call and are expanded by
the parser. Every resolver returns its specs, the problems found (one message each, naming the
spec) and notes on what it skipped.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from dataclasses import dataclass, field

import requests

from tap_looker_query.errors import (
    LoginError,
    LookerError,
    MalformedAnswerError,
    NotFoundError,
    SpecError,
)
from tap_looker_query.looker.transport import json_kind
from tap_looker_query.specs.dynamic import parse_dynamic_fields
from tap_looker_query.specs.merge import (
    MERGE_SOURCE_LIMIT,
    MergedSpec,
    MergeSource,
    merge_limit,
    merge_refusals,
    merged_columns,
    pair_refusals,
    source_refusals,
)
from tap_looker_query.specs.model import QuerySpec, SavedKind, SavedSpec
from tap_looker_query.specs.parse import duplicate_names, parse_inline

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


class ContentClient(t.Protocol):
    """What resolving saved content asks of Looker."""

    def look(self, look_id: str) -> dict[str, t.Any]:
        """A Look with its query."""
        ...

    def saved_query(self, query_id: str) -> dict[str, t.Any]:
        """A saved query by id."""
        ...

    def query_for_slug(self, slug: str) -> dict[str, t.Any]:
        """A saved query by slug."""
        ...

    def dashboard(self, dashboard_id: str) -> tuple[dict[str, t.Any], list[dict[str, t.Any]]]:
        """A dashboard and its elements."""
        ...

    def merge_query(self, merge_query_id: str) -> dict[str, t.Any]:
        """A merge query (merged results) by id."""
        ...


@dataclass
class Resolved:
    """What resolving one saved spec gave."""

    specs: list[QuerySpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: What was left out of a saved query on purpose (totals...), said at INFO.
    info: list[str] = field(default_factory=list)


#: Parts of a saved query that add no data rows: (key, what it is). The tap leaves them out.
LEFT_OUT = (
    ("fill_fields", "fill_fields (rows Looker adds for missing dimension values)"),
    ("total", "column totals"),
    ("row_total", "row totals"),
    ("subtotals", "subtotals"),
)
#: Keys of a saved query carried into its spec (the spec's own keys win).
_CARRIED = ("limit", "filter_expression", "pivots", "dynamic_fields", "column_limit")


def left_out(query: Mapping[str, t.Any]) -> list[str]:
    """What of `query` the tap leaves out: totals, subtotals, fill_fields."""
    return [what for key, what in LEFT_OUT if query.get(key) not in (None, "", [], False)]


def saved_query_spec(
    saved: SavedSpec,
    query: Mapping[str, t.Any],
    source: str,
    name: str | None = None,
    extra_filters: Mapping[str, str] | None = None,
) -> tuple[QuerySpec | None, list[str]]:
    """The spec for a saved query (a Look's, a tile's), with the spec's own keys over it.

    The window of an incremental spec replaces the saved query's own filter on the datetime
    field, unless the spec sets `filters` itself. Pivots, custom fields, table calculations,
    `column_limit` and the query's own `query_timezone` are kept; totals, subtotals and
    `fill_fields` are not data rows and are left out (`left_out`).
    """
    problems: list[str] = []
    overrides = dict(saved.overrides)
    metadata = overrides.get("metadata")
    datetime_field = metadata.get("datetime") if isinstance(metadata, dict) else None
    filters = {**dict(query.get("filters") or {}), **dict(extra_filters or {})}
    if datetime_field and "filters" not in overrides:
        filters.pop(datetime_field, None)
    merged: dict[str, t.Any] = {
        "name": name or saved.name,
        "model": query.get("model"),
        "explore": query.get("view"),
        "fields": list(query.get("fields") or []),
        "filters": filters,
        "sorts": list(query.get("sorts") or []),
    }
    for key in (*_CARRIED, "query_timezone"):
        if query.get(key) not in (None, "", []):
            merged[key] = query[key]
    merged.update(overrides)
    spec = parse_inline(merged, saved.origin, problems, source=source)
    return spec, problems


def _object_at(mapping: Mapping[str, t.Any], key: str, where: str) -> Mapping[str, t.Any]:
    """`mapping[key]` when it is an object, {} when absent or null.

    Raises:
        MalformedAnswerError: it is something else (Looker's answer is not what its API says).
    """
    value = mapping.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        msg = f"Looker's answer for {where}: '{key}' is {json_kind(value)}, not an object"
        raise MalformedAnswerError(msg)
    return value


def _objects_at(mapping: Mapping[str, t.Any], key: str, where: str) -> list[Mapping[str, t.Any]]:
    """`mapping[key]` when it is a list of objects, [] when absent or null.

    Raises:
        MalformedAnswerError: it is something else.
    """
    value = mapping.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        msg = f"Looker's answer for {where}: '{key}' is not a list of objects"
        raise MalformedAnswerError(msg)
    return value


def _tile_slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return slug or "tile"


def _tile_title(element: Mapping[str, t.Any]) -> str:
    return str(element.get("title") or element.get("title_text") or f"tile {element.get('id')}")


def _tile_query(element: Mapping[str, t.Any], where: str) -> tuple[Mapping[str, t.Any] | None, str]:
    """A tile's query, or None and why it has none that can run as one Looker query.

    Raises:
        MalformedAnswerError: a part of the tile is not an object.
    """
    maker = _object_at(element, "result_maker", where)
    if element.get("type") == "text":
        return None, "a text tile, skipped"
    if maker.get("sql_query_id"):
        return None, "a SQL Runner tile has no explore to type it from; skipped"
    look = _object_at(element, "look", where)
    query = (
        _object_at(element, "query", where)
        or _object_at(look, "query", where)
        or _object_at(maker, "query", where)
    )
    return (query, "") if query else (None, "no query behind it; skipped")


def _listened_filters(
    element: Mapping[str, t.Any], defaults: Mapping[str, t.Any], where: str
) -> dict[str, str]:
    """Field -> the default value of each dashboard filter the tile listens to."""
    listened: dict[str, str] = {}
    maker = _object_at(element, "result_maker", where)
    for filterable in _objects_at(maker, "filterables", where):
        listened.update(_filterable_listens(filterable, defaults, where))
    return listened


def _filterable_listens(
    filterable: Mapping[str, t.Any], defaults: Mapping[str, t.Any], where: str
) -> dict[str, str]:
    """Field -> the default value of each dashboard filter one filterable listens to."""
    listened: dict[str, str] = {}
    for listen in _objects_at(filterable, "listen", where):
        value = defaults.get(str(listen.get("dashboard_filter_name")))
        if value not in (None, "") and listen.get("field"):
            listened[str(listen["field"])] = str(value)
    return listened


def dashboard_specs(
    saved: SavedSpec,
    dashboard: Mapping[str, t.Any],
    elements: Sequence[Mapping[str, t.Any]],
    merges: Mapping[str, MergeContent | str] | None = None,
) -> Resolved:
    """One spec per query-backed or merged-results tile, the problems found, and notes on skips.

    Tiles listen to the dashboard's filters: each filter's default value is applied to the
    field the tile maps it to. `merges` holds each merged tile's merge query and source queries
    (or why they cannot be read). Text tiles are skipped; SQL Runner tiles have no explore to
    type them from and are reported by name.
    """
    defaults = {
        str(item.get("name") or item.get("title")): item.get("default_value")
        for item in _objects_at(dashboard, "dashboard_filters", f"dashboard {saved.ref}")
    }
    unknown = sorted(set(saved.overrides) - {"limit", "metadata"})
    result = Resolved(
        problems=[
            f"query '{saved.name}' (dashboard {saved.ref}): key '{key}' does not apply to a "
            "dashboard (its tiles have their own queries); only 'limit' and 'metadata' do"
            for key in unknown
        ]
    )
    overrides = {key: value for key, value in saved.overrides.items() if key not in unknown}
    used: set[str] = set()
    for element in elements:
        title = _tile_title(element)
        where = f"dashboard {saved.ref} tile '{title}'"
        merge_id = merge_id_of(element, where)
        query, why_not = _tile_query(element, where) if merge_id is None else ({}, "")
        if query is None:
            result.notes.append(f"{where}: {why_not}")
            continue
        base = f"{saved.name}_{_tile_slug(title)}"
        name, counter = base, 2
        while name in used:
            name, counter = f"{base}_{counter}", counter + 1
        used.add(name)
        tile = SavedSpec(name, saved.kind, saved.ref, overrides, saved.origin)
        if merge_id:
            content = (merges or {}).get(merge_id, f"merge query {merge_id} was not read")
            spec, found = merged_tile_spec(Tile(tile, where, element, defaults), merge_id, content)
        else:
            listened = _listened_filters(element, defaults, where)
            spec, found = saved_query_spec(tile, query, where, name=name, extra_filters=listened)
        result.problems += found
        if spec is not None:
            result.specs.append(spec)
            result.info += _left_out_note(spec, query)
    return result


#: A merge query (`MergeQuery`) and each of its source queries (`Query`), in order.
MergeContent = tuple[dict[str, t.Any], list[dict[str, t.Any]]]


def merge_id_of(element: Mapping[str, t.Any], where: str) -> str | None:
    """The merge query id of a merged-results tile, None for any other tile."""
    maker = _object_at(element, "result_maker", where)
    merge_id = element.get("merge_result_id") or maker.get("merge_result_id")
    return str(merge_id) if merge_id else None


def read_merge(client: ContentClient, merge_id: str) -> MergeContent | str:
    """A merge query and its source queries, or why they cannot be read.

    Raises:
        LoginError: Looker refused the credentials.
    """
    where = f"merge query {merge_id}"
    try:
        merge = client.merge_query(merge_id)
        queries = []
        for position, source in enumerate(_objects_at(merge, "source_queries", where), 1):
            if source.get("query_id"):
                queries.append(client.saved_query(str(source["query_id"])))
            elif source.get("query_slug"):
                queries.append(client.query_for_slug(str(source["query_slug"])))
            else:
                return f"source query {position} of {where} has neither query_id nor query_slug"
    except NotFoundError:
        return f"{where} or one of its source queries does not exist, or the API user cannot see it"
    except LoginError:
        raise
    except (LookerError, requests.RequestException) as exc:
        return f"cannot read {where}: {exc}"
    return merge, queries


def _source_listens(
    element: Mapping[str, t.Any],
    defaults: Mapping[str, t.Any],
    where: str,
    sources: Sequence[Mapping[str, t.Any]],
) -> list[dict[str, str]]:
    """Field -> dashboard filter default, for each source query of a merged tile.

    A merged tile's `result_maker.filterables` has one entry per source query; an entry is
    matched to its source query by `name` (the source query's name), else by position.
    """
    maker = _object_at(element, "result_maker", where)
    filterables = _objects_at(maker, "filterables", where)
    by_name = {str(item.get("name")): item for item in filterables if item.get("name")}
    listens = []
    for position, source in enumerate(sources):
        name = source.get("name")
        filterable = by_name.get(str(name)) if name else None
        if filterable is None and len(filterables) == len(sources):
            filterable = filterables[position]
        listens.append(_filterable_listens(filterable or {}, defaults, where))
    return listens


@dataclass(frozen=True)
class Tile:
    """A dashboard tile being resolved: its spec, how messages name it, the dashboard's filters."""

    saved: SavedSpec
    where: str
    element: Mapping[str, t.Any]
    defaults: Mapping[str, t.Any]


def merged_tile_spec(
    tile: Tile, merge_id: str, content: MergeContent | str
) -> tuple[QuerySpec | None, list[str]]:
    """The spec of a merged-results tile: its primary query's, with the added queries.

    A merge the tap cannot reproduce gives a spec with a `refusal` (the stream fails with it,
    the others go on) rather than a problem that would stop every stream.
    """
    reasons: list[str] = []
    if isinstance(content, str):
        reasons.append(content)
        merge: Mapping[str, t.Any] = {}
        queries: list[dict[str, t.Any]] = []
    else:
        merge, queries = content
        reasons += merge_refusals(merge)
    sources = _objects_at(merge, "source_queries", f"merge query {merge_id}")
    for position, query in enumerate(queries, 1):
        reasons += source_refusals(query, position)
    pairs = [
        tuple(
            (str(pair.get("source_field_name")), str(pair.get("field_name")))
            for pair in _objects_at(source, "merge_fields", f"merge query {merge_id}")
        )
        for source in sources
    ]
    primary_fields = _lookml_fields(queries[0]) if queries else []
    for position, (query, own_pairs) in enumerate(zip(queries[1:], pairs[1:], strict=True), 2):
        reasons += pair_refusals(own_pairs, _lookml_fields(query), primary_fields, position)
    if reasons:
        saved = tile.saved
        label = f"query '{saved.name}' ({tile.where})"
        refusal = f"{label}: the tap cannot reproduce this merged-results tile: " + "; ".join(
            reasons
        )
        refused = MergedSpec(
            name=saved.name, model="", explore="", fields=(), source=tile.where, origin=saved.origin
        )
        return dataclasses.replace(refused, merge_id=merge_id, refusal=refusal), []
    return _merged_spec(tile, merge_id, merge, queries, pairs)


def _lookml_fields(query: Mapping[str, t.Any]) -> list[str]:
    """A saved query's fields that are LookML fields (not its custom fields or calculations)."""
    custom = {item.name for item in parse_dynamic_fields(query.get("dynamic_fields"), "", [])}
    return [str(name) for name in query.get("fields") or [] if name not in custom]


def _limited(query: Mapping[str, t.Any], overrides: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A source query with Looker's cap on merged rows, unless the spec sets its own limit."""
    if "limit" in overrides:
        return dict(query)
    text = str(query.get("limit") or "").strip()
    own = int(text) if text.lstrip("-").isdigit() and int(text) > 0 else MERGE_SOURCE_LIMIT
    return {**query, "limit": str(min(own, MERGE_SOURCE_LIMIT))}


def _merged_spec(
    tile: Tile,
    merge_id: str,
    merge: Mapping[str, t.Any],
    queries: Sequence[Mapping[str, t.Any]],
    pairs: Sequence[tuple[tuple[str, str], ...]],
) -> tuple[QuerySpec | None, list[str]]:
    """The spec of a merge the tap can reproduce (its queries may still have problems)."""
    saved, where = tile.saved, tile.where
    sources = _objects_at(merge, "source_queries", f"merge query {merge_id}")
    listens = _source_listens(tile.element, tile.defaults, where, sources)
    primary, problems = saved_query_spec(
        saved,
        _limited(queries[0], saved.overrides),
        where,
        name=saved.name,
        extra_filters=listens[0],
    )
    added: list[tuple[QuerySpec, tuple[tuple[str, str], ...], bool]] = []
    for position in range(1, len(queries)):
        own_pairs = pairs[position]
        windowed_on = [own for own, onto in own_pairs if primary and onto == primary.datetime_field]
        overrides = {key: saved.overrides[key] for key in ("limit",) if key in saved.overrides}
        if windowed_on:
            overrides["metadata"] = {"datetime": windowed_on[0]}
        name = sources[position].get("name")
        source_where = f"{where}, source query {position + 1}" + (f" '{name}'" if name else "")
        spec, found = saved_query_spec(
            SavedSpec(saved.name, saved.kind, saved.ref, overrides, saved.origin),
            _limited(queries[position], overrides),
            source_where,
            extra_filters=listens[position],
        )
        problems += found
        if spec is not None:
            added.append((spec, own_pairs, bool(windowed_on)))
    if primary is None or len(added) != len(queries) - 1:
        return None, problems
    columns = merged_columns(
        [prop for _name, prop in primary.properties],
        [(spec.properties, [own for own, _ in own_pairs]) for spec, own_pairs, _ in added],
    )
    merged = MergedSpec(
        **{item.name: getattr(primary, item.name) for item in dataclasses.fields(QuerySpec)},
        merge_id=merge_id,
        sources=tuple(
            MergeSource(spec, own_pairs, own_columns, windowed)
            for (spec, own_pairs, windowed), own_columns in zip(added, columns, strict=True)
        ),
        merge_limit=merge_limit(merge),
    )
    return merged, problems


def _left_out_note(spec: QuerySpec, query: Mapping[str, t.Any]) -> list[str]:
    parts = left_out(query)
    if not parts:
        return []
    text = f"{spec.label}: left out {', '.join(parts)}: they are not data rows"
    return [text]


def _one_query(fetch: Callable[[ContentClient, str], Mapping[str, t.Any]]) -> Resolver:
    """A resolver for a source whose content is one saved query."""

    def resolve(client: ContentClient, saved: SavedSpec) -> Resolved:
        query = fetch(client, saved.ref)
        spec, problems = saved_query_spec(saved, query, saved.describe)
        if spec is None:
            return Resolved([], problems)
        return Resolved([spec], problems, info=_left_out_note(spec, query))

    return resolve


def _look_query(client: ContentClient, look_id: str) -> Mapping[str, t.Any]:
    """The query of a Look.

    Raises:
        MalformedAnswerError: the Look has no query, or its query is not an object.
    """
    query = _object_at(client.look(look_id), "query", f"Look {look_id}")
    if not query:
        msg = f"Look {look_id} has no query in Looker's answer"
        raise MalformedAnswerError(msg)
    return query


def _dashboard(client: ContentClient, saved: SavedSpec) -> Resolved:
    dashboard, elements = client.dashboard(saved.ref)
    merges: dict[str, MergeContent | str] = {}
    for element in elements:
        merge_id = merge_id_of(element, f"dashboard {saved.ref} tile '{_tile_title(element)}'")
        if merge_id and merge_id not in merges:
            merges[merge_id] = read_merge(client, merge_id)
    return dashboard_specs(saved, dashboard, elements, merges)


Resolver = t.Callable[[ContentClient, SavedSpec], Resolved]

#: Source key -> how its query is fetched from Looker and turned into specs.
RESOLVERS: dict[SavedKind, Resolver] = {
    "look_id": _one_query(_look_query),
    "query_id": _one_query(lambda client, ref: client.saved_query(ref)),
    "query_slug": _one_query(lambda client, ref: client.query_for_slug(ref)),
    "dashboard_id": _dashboard,
}


def resolve(
    client: ContentClient,
    parsed: Sequence[QuerySpec | SavedSpec],
    note: Callable[[str], None],
    inform: Callable[[str], None] = lambda _text: None,
) -> list[QuerySpec]:
    """Every spec with its query: saved content fetched from Looker and turned into specs.

    `note` is told what was skipped (a warning), `inform` what was left out on purpose.

    Raises:
        LoginError: Looker refused the credentials (nothing else can be checked then).
        SpecError: with one message per problem, every spec checked.
    """
    problems: list[str] = []
    specs: list[QuerySpec] = []
    for item in parsed:
        if isinstance(item, QuerySpec):
            specs.append(item)
            continue
        try:
            resolved = RESOLVERS[item.kind](client, item)
        except NotFoundError:
            problems.append(
                f"{item.label}: {item.describe} does not exist, or the API user cannot see it"
            )
            continue
        except LoginError:
            raise
        except (LookerError, requests.RequestException) as exc:
            problems.append(f"{item.label}: cannot read {item.describe}: {exc}")
            continue
        for text in resolved.notes:
            note(f"{item.name}: {text}")
        for text in resolved.info:
            inform(text)
        specs += resolved.specs
        problems += resolved.problems
    problems += duplicate_names(specs)
    if problems:
        raise SpecError(problems)
    return specs
