"""Query specs: parse inline specs and `queries_file` (looker_ingestion's format), validate them.

A *spec* is one configured Looker query that becomes one Singer stream. Validation happens in
two passes, both before any query runs: `parse_specs` checks each spec on its own (keys, names,
types), `check_against_explore` checks it against Looker's field metadata. Each problem is one
message that names the spec and the key.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from tap_looker_query.presets import PRESETS
from tap_looker_query.schema import Kind, LookerField, kind_of, property_name

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESULT_FORMATS = ("json", "csv")
#: Looker's row limit when a query sets none.
LOOKER_DEFAULT_LIMIT = 5000
DEFAULT_DAYS = 1
UNLIMITED = -1

_TOP_KEYS = {
    "name",
    "model",
    "explore",
    "view",
    "fields",
    "filters",
    "sorts",
    "limit",
    "filter_expression",
    "metadata",
}
_METADATA_KEYS = {"datetime", "default_days", "result_format", "primary_keys", "window_hours"}
_REQUIRED = ("name", "model", "explore", "fields")
#: Keys that take a spec's query from somewhere else than its own model/explore/fields.
SOURCE_KEYS = ("look_id", "dashboard_id", "query_id", "query_slug", "preset")
_TOP_KEYS |= set(SOURCE_KEYS)


class SpecError(Exception):
    """One or more query specs are invalid; `problems` holds one message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        """Keep every problem so the user can fix them all in one go."""
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


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
    result_format: str = "json"
    primary_keys: tuple[str, ...] = ()
    window_hours: int | None = None
    origin: str = "queries"
    source: str = ""

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
        """The Singer key properties from `metadata.primary_keys`."""
        return [property_name(name) for name in self.primary_keys]


@dataclass(frozen=True)
class SavedSpec:
    """A spec whose query lives in Looker: a Look, a dashboard, or a saved query.

    `overrides` holds the spec's own keys (fields, filters, sorts, limit, metadata...), applied
    over the saved query once it is fetched; `resolve_saved` then validates the result like an
    inline spec.
    """

    name: str
    kind: str  # one of SOURCE_KEYS except "preset"
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


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest candidate, or nothing when none is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _as_int(value: object) -> int | None:
    """An int, or a string holding one (looker_ingestion writes `"limit": "5000"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _str_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return list(value)
    return None


def _check_name_and_keys(raw: Mapping[str, t.Any], where: str, problems: list[str]) -> None:
    """What every kind of spec is checked for: unknown keys, and a name unfit for a stream."""
    for key in sorted(set(raw) - _TOP_KEYS):
        problems.append(f"{where}: unknown key '{key}'{suggestion(key, _TOP_KEYS)}")
    name = raw.get("name")
    if isinstance(name, str) and name and not STREAM_NAME.match(name):
        problems.append(
            f"{where}: key 'name' must match ^[a-z][a-z0-9_]*$ (lowercase letters, digits, "
            "underscores; it becomes the stream and table name)"
        )


def _parse_one(raw: object, origin: str, problems: list[str]) -> QuerySpec | SavedSpec | None:  # noqa: PLR0911
    """A spec from its config object: inline, a preset, or a reference to saved content."""
    if not isinstance(raw, dict):
        problems.append(f"{origin}: a query spec must be a JSON object, got {type(raw).__name__}")
        return None
    name = raw.get("name")
    where = f"query '{name}'" if isinstance(name, str) and name else origin
    sources = [key for key in SOURCE_KEYS if raw.get(key) not in (None, "")]
    if len(sources) > 1:
        problems.append(f"{where}: set only one of {', '.join(sources)}")
        return None
    if not sources:
        return _parse_inline(raw, origin, problems)
    kind = sources[0]
    if kind == "preset":
        expanded = expand_preset(raw, where, problems)
        return None if expanded is None else _parse_inline(expanded, origin, problems)
    ref = raw[kind]
    if isinstance(ref, bool) or not isinstance(ref, (str, int)):
        problems.append(f"{where}: key '{kind}' must be an id (a number or a string)")
        return None
    before = len(problems)
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: missing required key 'name'")
    _check_name_and_keys(raw, where, problems)
    if len(problems) > before:
        return None
    overrides = {key: value for key, value in raw.items() if key not in {"name", kind}}
    return SavedSpec(str(name), kind, str(ref), overrides, origin)


def _parse_inline(  # noqa: C901, PLR0912, PLR0915
    raw: dict[str, t.Any], origin: str, problems: list[str], source: str = ""
) -> QuerySpec | None:
    name = raw.get("name")
    where = f"query '{name}'" if isinstance(name, str) and name else origin
    before = len(problems)
    _check_name_and_keys(raw, where, problems)
    for key in _REQUIRED:
        if key == "explore" and "explore" not in raw and "view" in raw:
            continue  # Looker's own name for an explore in a query body
        if raw.get(key) in (None, "", []):
            problems.append(f"{where}: missing required key '{key}'")

    explore = raw.get("explore", raw.get("view"))
    for key, value in (("model", raw.get("model")), ("explore", explore)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}: key '{key}' must be a string")

    fields = raw.get("fields")
    field_list = _str_list(fields) if fields is not None else []
    if fields is not None and field_list is None:
        problems.append(f"{where}: key 'fields' must be a list of field names like 'view.field'")
    elif field_list is not None:
        seen: set[str] = set()
        for item in field_list:
            if item in seen:
                problems.append(f"{where}: key 'fields' lists '{item}' twice")
            seen.add(item)

    filters = raw.get("filters") or {}
    if not isinstance(filters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in filters.items()
    ):
        problems.append(
            f"{where}: key 'filters' must be an object of field name to Looker filter expression"
        )
        filters = {}

    sorts = raw.get("sorts") or []
    sort_list = _str_list(sorts)
    if sort_list is None:
        problems.append(f"{where}: key 'sorts' must be a list like ['view.field desc']")
        sort_list = []

    limit: int | None = None
    if raw.get("limit") is not None:
        limit = _as_int(raw["limit"])
        if limit is None or (limit < 1 and limit != UNLIMITED):
            problems.append(
                f"{where}: key 'limit' must be a positive whole number or -1 (unlimited), "
                f"got {raw['limit']!r}"
            )
            limit = None

    filter_expression = raw.get("filter_expression")
    if filter_expression is not None and not isinstance(filter_expression, str):
        problems.append(f"{where}: key 'filter_expression' must be a string")
        filter_expression = None

    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        problems.append(f"{where}: key 'metadata' must be an object")
        metadata = {}
    for key in sorted(set(metadata) - _METADATA_KEYS):
        problems.append(f"{where}: unknown key 'metadata.{key}'{suggestion(key, _METADATA_KEYS)}")

    datetime_field = metadata.get("datetime")
    if datetime_field is not None and (not isinstance(datetime_field, str) or not datetime_field):
        problems.append(f"{where}: key 'metadata.datetime' must be a field name")
        datetime_field = None
    elif datetime_field is not None and field_list and datetime_field not in field_list:
        problems.append(
            f"{where}: key 'metadata.datetime' is '{datetime_field}', which is not among "
            "'fields'; add it to 'fields' (the bookmark is read from it)"
        )

    default_days = DEFAULT_DAYS
    if metadata.get("default_days") is not None:
        parsed_days = _as_int(metadata["default_days"])
        if parsed_days is None or parsed_days < 1:
            problems.append(
                f"{where}: key 'metadata.default_days' must be a whole number of days >= 1, "
                f'like 4 or "4", got {metadata["default_days"]!r}'
            )
        else:
            default_days = parsed_days

    result_format = metadata.get("result_format") or "json"
    if result_format not in RESULT_FORMATS:
        problems.append(
            f"{where}: key 'metadata.result_format' must be 'json' or 'csv', got {result_format!r}"
        )

    window_hours: int | None = None
    if metadata.get("window_hours") is not None:
        window_hours = _as_int(metadata["window_hours"])
        if window_hours is None or window_hours < 1:
            problems.append(
                f"{where}: key 'metadata.window_hours' must be a whole number of hours >= 1, "
                f"got {metadata['window_hours']!r}"
            )
            window_hours = None

    primary_keys = metadata.get("primary_keys") or []
    key_list = _str_list(primary_keys)
    if key_list is None:
        problems.append(f"{where}: key 'metadata.primary_keys' must be a list of field names")
        key_list = []
    for key_field in key_list:
        if field_list and key_field not in field_list:
            problems.append(
                f"{where}: key 'metadata.primary_keys' names '{key_field}', which is not among "
                f"'fields'{suggestion(key_field, field_list)}"
            )

    if field_list:
        by_property: dict[str, str] = {}
        for item in field_list:
            prop = property_name(item)
            if prop in by_property and by_property[prop] != item:
                problems.append(
                    f"{where}: fields '{by_property[prop]}' and '{item}' both become the "
                    f"property '{prop}'; keep one of them"
                )
            by_property[prop] = item

    if len(problems) > before:
        return None
    return QuerySpec(
        name=str(name),
        model=str(raw["model"]),
        explore=str(explore),
        fields=tuple(field_list or ()),
        filters=dict(filters),
        sorts=tuple(sort_list),
        limit=limit,
        filter_expression=filter_expression,
        datetime_field=datetime_field,
        default_days=default_days,
        result_format=str(result_format),
        primary_keys=tuple(key_list),
        window_hours=window_hours,
        origin=origin,
        source=source,
    )


def load_queries_file(path: str | Path) -> list[object]:
    """Read a looker_ingestion query file: one spec object or a list of them.

    Raises:
        SpecError: the file is missing or is not JSON.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"queries_file '{path}': cannot read it ({exc.strerror or exc})"
        raise SpecError([msg]) from exc
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"queries_file '{path}': not valid JSON ({exc.msg} at line {exc.lineno})"
        raise SpecError([msg]) from exc
    return content if isinstance(content, list) else [content]


def parse_specs(config: Mapping[str, t.Any]) -> list[QuerySpec | SavedSpec]:
    """All specs from `queries` and `queries_file`, validated on their own.

    Raises:
        SpecError: with every problem found, each naming its spec and key.
    """
    problems: list[str] = []
    raw_specs: list[tuple[object, str]] = [
        (raw, f"queries[{index}]") for index, raw in enumerate(config.get("queries") or [])
    ]
    if config.get("queries_file"):
        path = config["queries_file"]
        try:
            loaded = load_queries_file(path)
        except SpecError as exc:
            problems.extend(exc.problems)
        else:
            raw_specs += [(raw, f"queries_file[{index}]") for index, raw in enumerate(loaded)]
    if not raw_specs and not problems:
        problems.append("no query specs: set 'queries' or 'queries_file' (or both)")

    specs = [_parse_one(raw, origin, problems) for raw, origin in raw_specs]
    valid = [spec for spec in specs if spec is not None]
    names: dict[str, str] = {}
    for spec in valid:
        if spec.name in names:
            problems.append(
                f"query '{spec.name}': duplicate stream name (in {names[spec.name]} and "
                f"{spec.origin}); names must be unique"
            )
        names.setdefault(spec.name, spec.origin)
    if problems:
        raise SpecError(problems)
    return valid


def _sort_field(sort: str) -> str:
    return sort.split(maxsplit=1)[0] if sort.split() else sort


def check_against_explore(  # noqa: C901
    spec: QuerySpec,
    explore_fields: Mapping[str, LookerField],
) -> list[str]:
    """Problems with a spec given its explore's fields (empty when the spec is valid)."""
    problems: list[str] = []
    where = f"{spec.label}: "
    known = explore_fields.keys()
    explore = spec.explore_id
    for name in spec.fields:
        if name not in explore_fields:
            problems.append(
                f"{where}field '{name}' is not in explore {explore}{suggestion(name, known)}"
            )
    for name in spec.filters:
        if name not in explore_fields:
            problems.append(
                f"{where}filter on '{name}', which is not in explore {explore}"
                f"{suggestion(name, known)}"
            )
    for sort in spec.sorts:
        name = _sort_field(sort)
        if name not in explore_fields:
            problems.append(
                f"{where}sort on '{name}', which is not in explore {explore}"
                f"{suggestion(name, known)}"
            )
        elif name not in spec.fields:
            problems.append(f"{where}sort on '{name}', which is not among 'fields'")
    if spec.datetime_field and spec.datetime_field in explore_fields:
        looker_field = explore_fields[spec.datetime_field]
        if kind_of(looker_field) is not Kind.DATETIME:
            problems.append(
                f"{where}key 'metadata.datetime' is '{spec.datetime_field}' of type "
                f"'{looker_field.type}', not a time field; use a timeframe like "
                f"'{spec.datetime_field.rsplit('_', 1)[0]}_time'"
            )
        elif looker_field.category == "measure":
            problems.append(
                f"{where}key 'metadata.datetime' is '{spec.datetime_field}', a measure; "
                "use a time dimension"
            )
    return problems


def expand_preset(
    raw: Mapping[str, t.Any], where: str, problems: list[str]
) -> dict[str, t.Any] | None:
    """A preset's curated spec with the user's keys over it (`metadata` merged key by key)."""
    name = raw.get("preset")
    if name not in PRESETS:
        problems.append(
            f"{where}: key 'preset': unknown preset {name!r}{suggestion(str(name), PRESETS)} "
            f"(presets: {', '.join(sorted(PRESETS))})"
        )
        return None
    base = copy.deepcopy(PRESETS[str(name)])
    merged = {**base, **{key: value for key, value in raw.items() if key != "preset"}}
    user_metadata = raw.get("metadata")
    if isinstance(user_metadata, dict):
        merged["metadata"] = {**base.get("metadata", {}), **user_metadata}
    return merged


def _tile_slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return slug or "tile"


def saved_query_spec(
    saved: SavedSpec,
    query: Mapping[str, t.Any],
    source: str,
    name: str | None = None,
    extra_filters: Mapping[str, str] | None = None,
) -> tuple[QuerySpec | None, list[str]]:
    """The spec for a saved query (a Look's, a tile's), with the spec's own keys over it.

    The window of an incremental spec replaces the saved query's own filter on the datetime
    field, unless the spec sets `filters` itself.
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
    for key in ("limit", "filter_expression"):
        if query.get(key) not in (None, ""):
            merged[key] = query[key]
    merged.update(overrides)
    dynamic = query.get("dynamic_fields")
    if dynamic not in (None, "", "[]") and "fields" not in overrides:
        problems.append(
            f"query '{merged['name']}' ({source}): uses custom fields or table calculations "
            "(dynamic_fields), which the tap cannot type; list plain 'fields' in the spec"
        )
        return None, problems
    spec = _parse_inline(merged, saved.origin, problems, source=source)
    return spec, problems


def dashboard_specs(  # noqa: C901
    saved: SavedSpec,
    dashboard: Mapping[str, t.Any],
    elements: Sequence[Mapping[str, t.Any]],
) -> tuple[list[QuerySpec], list[str], list[str]]:
    """One spec per query-backed tile: (specs, problems, notes on tiles that were skipped).

    Tiles listen to the dashboard's filters: each filter's default value is applied to the
    field the tile maps it to. Text tiles are skipped; merged-result and SQL Runner tiles cannot
    run as one Looker query and are reported by name.
    """
    defaults = {
        str(item.get("name") or item.get("title")): item.get("default_value")
        for item in dashboard.get("dashboard_filters") or []
    }
    unknown = sorted(set(saved.overrides) - {"limit", "metadata"})
    problems = [
        f"query '{saved.name}' (dashboard {saved.ref}): key '{key}' does not apply to a "
        "dashboard (its tiles have their own queries); only 'limit' and 'metadata' do"
        for key in unknown
    ]
    specs: list[QuerySpec] = []
    notes: list[str] = []
    used: set[str] = set()
    for element in elements:
        title = str(
            element.get("title") or element.get("title_text") or f"tile {element.get('id')}"
        )
        maker = element.get("result_maker") or {}
        where = f"dashboard {saved.ref} tile '{title}'"
        if element.get("type") == "text":
            notes.append(f"{where}: a text tile, skipped")
            continue
        if element.get("merge_result_id") or maker.get("merge_result_id"):
            notes.append(f"{where}: merged results cannot run as one Looker query; skipped")
            continue
        if maker.get("sql_query_id"):
            notes.append(f"{where}: a SQL Runner tile has no explore to type it from; skipped")
            continue
        look = element.get("look") or {}
        query = element.get("query") or look.get("query") or maker.get("query")
        if not query:
            notes.append(f"{where}: no query behind it; skipped")
            continue
        listened: dict[str, str] = {}
        for filterable in maker.get("filterables") or []:
            for listen in filterable.get("listen") or []:
                value = defaults.get(str(listen.get("dashboard_filter_name")))
                if value not in (None, "") and listen.get("field"):
                    listened[str(listen["field"])] = str(value)
        base = f"{saved.name}_{_tile_slug(title)}"
        name, counter = base, 2
        while name in used:
            name, counter = f"{base}_{counter}", counter + 1
        used.add(name)
        tile_saved = SavedSpec(
            name,
            saved.kind,
            saved.ref,
            {key: value for key, value in saved.overrides.items() if key not in unknown},
            saved.origin,
        )
        spec, found = saved_query_spec(tile_saved, query, where, name=name, extra_filters=listened)
        problems += found
        if spec is not None:
            specs.append(spec)
    return specs, problems, notes
