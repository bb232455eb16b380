"""Parse inline specs and `queries_file` (looker_ingestion's format), each checked on its own.

A *spec* is one configured Looker query that becomes one Singer stream. Validation happens in
two passes, both before any query runs: `parse_specs` checks each spec on its own (keys, names,
types), `discovery` checks it against Looker's field metadata. Each problem is one message that
names the spec and the key.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import typing as t
from pathlib import Path

from tap_looker_query.errors import SpecError
from tap_looker_query.schema import property_name, timezone
from tap_looker_query.specs.dynamic import DynamicField, dynamic_json, parse_dynamic_fields
from tap_looker_query.specs.model import (
    DEFAULT_DAYS,
    METADATA_KEYS,
    RESULT_FORMATS,
    SOURCE_KEYS,
    STREAM_NAME,
    TOP_KEYS,
    UNLIMITED,
    QuerySpec,
    SavedKind,
    SavedSpec,
)
from tap_looker_query.specs.presets import PRESETS

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_REQUIRED = ("name", "model", "explore", "fields")


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


class _Checker:
    """Collects the problems of one spec; each check reads one key or group of keys."""

    def __init__(self, raw: Mapping[str, t.Any], origin: str, problems: list[str]) -> None:
        name = raw.get("name")
        self.raw = raw
        self.where = f"query '{name}'" if isinstance(name, str) and name else origin
        self.problems = problems
        self._before = len(problems)

    @property
    def failed(self) -> bool:
        return len(self.problems) > self._before

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.where}: {text}")

    def name_and_keys(self) -> None:
        """What every kind of spec is checked for: unknown keys, a name unfit for a stream."""
        for key in sorted(set(self.raw) - TOP_KEYS):
            self.problem(f"unknown key '{key}'{suggestion(key, TOP_KEYS)}")
        name = self.raw.get("name")
        if isinstance(name, str) and name and not STREAM_NAME.match(name):
            self.problem(
                "key 'name' must match ^[a-z][a-z0-9_]*$ (lowercase letters, digits, "
                "underscores; it becomes the stream and table name)"
            )

    def required(self) -> str | None:
        """The required keys, and the explore (Looker's query bodies call it `view`)."""
        raw = self.raw
        for key in _REQUIRED:
            if key == "explore" and "explore" not in raw and "view" in raw:
                continue
            if raw.get(key) in (None, "", []):
                self.problem(f"missing required key '{key}'")
        explore = raw.get("explore", raw.get("view"))
        for key, value in (("model", raw.get("model")), ("explore", explore)):
            if value is not None and not isinstance(value, str):
                self.problem(f"key '{key}' must be a string")
        return explore if isinstance(explore, str) else None

    def fields(self) -> list[str]:
        fields = self.raw.get("fields")
        if fields is None:
            return []
        field_list = _str_list(fields)
        if field_list is None:
            self.problem("key 'fields' must be a list of field names like 'view.field'")
            return []
        seen: set[str] = set()
        by_property: dict[str, str] = {}
        for item in field_list:
            if item in seen:
                self.problem(f"key 'fields' lists '{item}' twice")
            seen.add(item)
            if "." not in item:  # a custom field: its property is made unique (QuerySpec)
                continue
            prop = property_name(item)
            if prop in by_property and by_property[prop] != item:
                self.problem(
                    f"fields '{by_property[prop]}' and '{item}' both become the property "
                    f"'{prop}'; keep one of them"
                )
            by_property[prop] = item
        return field_list

    def filters(self) -> dict[str, str]:
        filters = self.raw.get("filters") or {}
        if isinstance(filters, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in filters.items()
        ):
            return dict(filters)
        self.problem("key 'filters' must be an object of field name to Looker filter expression")
        return {}

    def sorts(self) -> list[str]:
        sort_list = _str_list(self.raw.get("sorts") or [])
        if sort_list is None:
            self.problem("key 'sorts' must be a list like ['view.field desc']")
            return []
        return sort_list

    def limit(self) -> int | None:
        value = self.raw.get("limit")
        if value is None:
            return None
        limit = _as_int(value)
        if limit is None or (limit < 1 and limit != UNLIMITED):
            self.problem(
                f"key 'limit' must be a positive whole number or -1 (unlimited), got {value!r}"
            )
            return None
        return limit

    def filter_expression(self) -> str | None:
        value = self.raw.get("filter_expression")
        if value is not None and not isinstance(value, str):
            self.problem("key 'filter_expression' must be a string")
            return None
        return value

    def pivots(self, fields: list[str]) -> list[str]:
        pivots = _str_list(self.raw.get("pivots") or [])
        if pivots is None:
            self.problem("key 'pivots' must be a list of field names like ['view.field']")
            return []
        for name in pivots:
            if fields and name not in fields:
                self.problem(
                    f"key 'pivots' names '{name}', which is not among 'fields'; Looker pivots "
                    "on selected dimensions only"
                )
        return pivots

    def dynamic_fields(self) -> list[DynamicField]:
        return parse_dynamic_fields(self.raw.get("dynamic_fields"), self.where, self.problems)

    def column_limit(self) -> int | None:
        value = self.raw.get("column_limit")
        if value in (None, ""):
            return None
        limit = _as_int(value)
        if limit is None or limit < 1:
            self.problem(f"key 'column_limit' must be a positive whole number, got {value!r}")
            return None
        return limit

    def query_timezone(self) -> str | None:
        value = self.raw.get("query_timezone")
        if value in (None, ""):
            return None
        try:
            timezone(str(value))
        except (ValueError, KeyError):
            self.problem(
                f"key 'query_timezone': unknown time zone {value!r}; use an IANA name like "
                "'UTC' or 'America/New_York'"
            )
            return None
        return str(value)

    def metadata(self) -> dict[str, t.Any]:
        metadata = self.raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            self.problem("key 'metadata' must be an object")
            return {}
        for key in sorted(set(metadata) - METADATA_KEYS):
            self.problem(f"unknown key 'metadata.{key}'{suggestion(key, METADATA_KEYS)}")
        return metadata

    def whole_number(
        self, metadata: Mapping[str, t.Any], key: str, unit: str, bounds: tuple[int, int]
    ) -> int | None:
        """`metadata.<key>`: a whole number within `bounds` (or a string holding one), or None."""
        value = metadata.get(key)
        if value is None:
            return None
        number = _as_int(value)
        low, high = bounds
        if number is None or not low <= number <= high:
            self.problem(
                f"key 'metadata.{key}' must be a whole number of {unit} from {low} to {high}, "
                f'like 4 or "4", got {value!r}'
            )
            return None
        return number

    def datetime_field(self, metadata: Mapping[str, t.Any], fields: list[str]) -> str | None:
        value = metadata.get("datetime")
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problem("key 'metadata.datetime' must be a field name")
            return None
        if fields and value not in fields:
            self.problem(
                f"key 'metadata.datetime' is '{value}', which is not among 'fields'; add it to "
                "'fields' (the bookmark is read from it)"
            )
        return value

    def result_format(self, metadata: Mapping[str, t.Any]) -> str:
        value = metadata.get("result_format") or RESULT_FORMATS[0]
        if value not in RESULT_FORMATS:
            choices = " or ".join(f"'{name}'" for name in RESULT_FORMATS)
            self.problem(f"key 'metadata.result_format' must be {choices}, got {value!r}")
        return str(value)

    def primary_keys(self, metadata: Mapping[str, t.Any], fields: list[str]) -> list[str]:
        key_list = _str_list(metadata.get("primary_keys") or [])
        if key_list is None:
            self.problem("key 'metadata.primary_keys' must be a list of field names")
            return []
        for key_field in key_list:
            if fields and key_field not in fields:
                self.problem(
                    f"key 'metadata.primary_keys' names '{key_field}', which is not among "
                    f"'fields'{suggestion(key_field, fields)}"
                )
        return key_list


def parse_inline(
    raw: Mapping[str, t.Any], origin: str, problems: list[str], source: str = ""
) -> QuerySpec | None:
    """An inline spec (model, explore, fields...), or None with its problems added."""
    check = _Checker(raw, origin, problems)
    check.name_and_keys()
    explore = check.required()
    fields = check.fields()
    filters = check.filters()
    sorts = check.sorts()
    limit = check.limit()
    filter_expression = check.filter_expression()
    metadata = check.metadata()
    datetime_field = check.datetime_field(metadata, fields)
    default_days = check.whole_number(metadata, "default_days", "days", (1, 36_600))
    result_format = check.result_format(metadata)
    window_hours = check.whole_number(metadata, "window_hours", "hours", (1, 8784))
    lookback_minutes = check.whole_number(metadata, "lookback_minutes", "minutes", (0, 527_040))
    primary_keys = check.primary_keys(metadata, fields)
    pivots = check.pivots(fields)
    dynamic = check.dynamic_fields()
    column_limit = check.column_limit()
    query_timezone = check.query_timezone()
    if datetime_field and datetime_field in pivots:
        check.problem(
            f"key 'metadata.datetime' is '{datetime_field}', which is a pivot; the datetime "
            "field must be a row dimension (windows filter and sort on it)"
        )
    if check.failed:
        return None
    return QuerySpec(
        name=str(raw["name"]),
        model=str(raw["model"]),
        explore=str(explore),
        fields=tuple(fields),
        filters=filters,
        sorts=tuple(sorts),
        limit=limit,
        filter_expression=filter_expression,
        datetime_field=datetime_field,
        default_days=DEFAULT_DAYS if default_days is None else default_days,
        result_format=result_format,
        primary_keys=tuple(primary_keys),
        window_hours=window_hours,
        lookback_minutes=lookback_minutes,
        origin=origin,
        source=source,
        pivots=tuple(pivots),
        dynamic_fields=tuple(dynamic),
        dynamic_json=dynamic_json(raw.get("dynamic_fields")) if dynamic else None,
        column_limit=column_limit,
        query_timezone=query_timezone,
    )


def _parse_saved(
    raw: Mapping[str, t.Any], kind: SavedKind, origin: str, problems: list[str]
) -> SavedSpec | None:
    check = _Checker(raw, origin, problems)
    ref = raw[kind]
    if isinstance(ref, bool) or not isinstance(ref, (str, int)):
        check.problem(f"key '{kind}' must be an id (a number or a string)")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        check.problem("missing required key 'name'")
    check.name_and_keys()
    if check.failed:
        return None
    overrides = {key: value for key, value in raw.items() if key not in {"name", kind}}
    return SavedSpec(str(name), kind, str(ref), overrides, origin)


def _parse_one(raw: object, origin: str, problems: list[str]) -> QuerySpec | SavedSpec | None:
    """A spec from its config object: inline, a preset, or a reference to saved content."""
    if not isinstance(raw, dict):
        problems.append(f"{origin}: a query spec must be a JSON object, got {type(raw).__name__}")
        return None
    sources = [key for key in SOURCE_KEYS if raw.get(key) not in (None, "")]
    if len(sources) > 1:
        _Checker(raw, origin, problems).problem(f"set only one of {', '.join(sources)}")
        return None
    if not sources:
        return parse_inline(raw, origin, problems)
    if sources[0] == "preset":
        expanded = expand_preset(raw, _Checker(raw, origin, problems).where, problems)
        return None if expanded is None else parse_inline(expanded, origin, problems)
    return _parse_saved(raw, t.cast("SavedKind", sources[0]), origin, problems)


def load_queries_file(path: str | Path) -> list[object]:
    """Read a looker_ingestion query file: one spec object or a list of them.

    Raises:
        SpecError: the file is missing, unreadable or not JSON.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"queries_file '{path}': cannot read it ({exc.strerror or exc})"
        raise SpecError([msg]) from exc
    except UnicodeDecodeError as exc:
        msg = f"queries_file '{path}': not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise SpecError([msg]) from exc
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"queries_file '{path}': not valid JSON ({exc.msg} at line {exc.lineno})"
        raise SpecError([msg]) from exc
    except RecursionError as exc:
        msg = f"queries_file '{path}': JSON nested too deeply to be a query spec"
        raise SpecError([msg]) from exc
    return content if isinstance(content, list) else [content]


def duplicate_names(specs: Iterable[QuerySpec | SavedSpec]) -> list[str]:
    """One problem per spec whose stream name an earlier spec already has."""
    problems: list[str] = []
    seen: dict[str, QuerySpec | SavedSpec] = {}
    for spec in specs:
        first = seen.setdefault(spec.name, spec)
        if first is not spec:
            problems.append(
                f"{spec.label}: duplicate stream name (in {first.origin} and {spec.origin}); "
                "names must be unique"
            )
    return problems


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
        try:
            loaded = load_queries_file(config["queries_file"])
        except SpecError as exc:
            problems.extend(exc.problems)
        else:
            raw_specs += [(raw, f"queries_file[{index}]") for index, raw in enumerate(loaded)]
    if not raw_specs and not problems:
        problems.append("no query specs: set 'queries' or 'queries_file' (or both)")
    specs = [_parse_one(raw, origin, problems) for raw, origin in raw_specs]
    valid = [spec for spec in specs if spec is not None]
    problems += duplicate_names(valid)
    if problems:
        raise SpecError(problems)
    return valid


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
