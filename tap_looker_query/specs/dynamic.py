"""Custom fields and table calculations (`dynamic_fields`), as a spec, Look or tile holds them.

Looker stores `dynamic_fields` as a JSON string: a list of objects, each a custom dimension
(`dimension` + `expression`), a custom measure (`measure` + `based_on` + `type`) or a table
calculation (`table_calculation` + `expression`), with the type Looker inferred in
`_type_hint`. Their values are keyed by that bare name in results; `is_disabled` ones are not
computed at all, so they become no property.
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass

from tap_looker_query.schema import LookerField

if t.TYPE_CHECKING:
    from collections.abc import Mapping

DynamicKind = t.Literal["table_calculation", "measure", "dimension"]
_KINDS: tuple[DynamicKind, ...] = ("table_calculation", "measure", "dimension")
#: `_type_hint` -> the Looker type the schema mapping knows (dates as Looker renders them).
_HINT_TYPES = {
    "number": "number",
    "string": "string",
    "yesno": "yesno",
    "date": "date_date",
    "date_time": "date_time",
    "datetime": "date_time",
}
#: Custom measure types whose values are numbers whatever they aggregate.
_NUMERIC_MEASURES = frozenset({"count", "count_distinct", "sum", "average", "median"})


@dataclass(frozen=True)
class DynamicField:
    """One item of `dynamic_fields`."""

    name: str
    kind: DynamicKind
    label: str
    type_hint: str | None = None
    based_on: str | None = None
    measure_type: str | None = None
    disabled: bool = False

    def looker_field(self, explore_fields: Mapping[str, LookerField]) -> LookerField:
        """Its metadata, typed from what Looker reports about it.

        A custom measure has its aggregate type (a `min`/`max` is numeric when its `based_on`
        field is); anything else has the type Looker inferred, `_type_hint`.
        """
        if self.kind == "measure" and self.measure_type:
            based_on = explore_fields.get(self.based_on or "")
            numeric = self.measure_type in _NUMERIC_MEASURES or (
                based_on is not None and based_on.is_numeric
            )
            return LookerField(
                self.name, self.measure_type, "measure", self.label, is_numeric=numeric
            )
        looker_type = _HINT_TYPES.get(self.type_hint or "", self.type_hint or "")
        return LookerField(
            self.name, looker_type, self.kind, self.label, is_numeric=looker_type == "number"
        )


def parse_dynamic_fields(raw: object, where: str, problems: list[str]) -> list[DynamicField]:
    """The items of `dynamic_fields` (a JSON string or a list), each problem added once."""
    if raw in (None, "", [], "[]"):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            problems.append(f"{where}: key 'dynamic_fields' is not valid JSON ({exc})")
            return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append(
            f"{where}: key 'dynamic_fields' must be a list of objects (or the JSON text of one)"
        )
        return []
    items: list[DynamicField] = []
    seen: set[str] = set()
    for number, item in enumerate(raw, 1):
        kind = next((k for k in _KINDS if isinstance(item.get(k), str) and item.get(k)), None)
        if kind is None:
            problems.append(
                f"{where}: dynamic_fields item {number} names no table_calculation, measure or "
                "dimension"
            )
            continue
        name = str(item[kind])
        if name in seen:
            problems.append(f"{where}: dynamic_fields names '{name}' twice")
        seen.add(name)
        hint = item.get("_type_hint")
        items.append(
            DynamicField(
                name=name,
                kind=kind,
                label=str(item.get("label") or name),
                type_hint=str(hint) if hint else None,
                based_on=str(item["based_on"]) if item.get("based_on") else None,
                measure_type=str(item["type"]) if kind == "measure" and item.get("type") else None,
                disabled=bool(item.get("is_disabled")),
            )
        )
    return items


def dynamic_json(raw: object) -> str | None:
    """`dynamic_fields` as Looker's API takes it: a JSON string."""
    if raw in (None, "", []):
        return None
    return raw if isinstance(raw, str) else json.dumps(raw)


_INVALID = re.compile(r"[^a-z0-9_]+")


def dynamic_property(name: str) -> str:
    """A valid property name for a custom field or table calculation (lowercase, `_`)."""
    prop = _INVALID.sub("_", name.lower()).strip("_") or "field"
    return prop if prop[0].isalpha() else f"f_{prop}"
