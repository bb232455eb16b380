"""Records from Looker rows, in one call per row.

Generated converters. A row becomes a record in one call: a dict display with one inline
expression per field. Values already of the right JSON type pass as they are; the common
datetime and date texts are checked by `fromisoformat` (C) and reshaped inline; anything else
goes through the field's converter (`c<i>`), which parses it or raises ValueMismatchError.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import msgspec

from tap_looker_query.errors import ValueMismatchError
from tap_looker_query.schema import Converter, Kind, converter_for, is_utc

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Inline tests for values that pass unchanged (`v` is the value).
_PASS = {
    Kind.STRING: "v is None or v.__class__ is str",
    Kind.NUMBER: "v is None or v.__class__ is int or v.__class__ is float",
    Kind.INTEGER: "v is None or v.__class__ is int",
}
#: `YYYY-MM-DD HH:MM:SS` with its separators where they belong (fromisoformat checks digits).
_DATETIME_SHAPE = (
    'len(v) == 19 and v[10] == " " and v[4] == "-" and v[7] == "-" and v[13] == ":" '
    'and v[16] == ":" and _datetime(v)'
)
_DATE_SHAPE = 'len(v) == 10 and v[4] == "-" and v[7] == "-" and _date(v)'


def _value_expression(kind: Kind, value: str, index: int, *, utc: bool, typed: bool) -> str:
    """The inline expression turning `value` (source text) into its JSON value.

    `typed`: msgspec already checked the value against `_STRUCT_TYPES[kind]`.
    """
    fallback = f"c{index}(v)"
    if kind in _PASS:
        return (
            value
            if typed
            else f"(v if ({_PASS[kind].replace('v', f'(v := {value})', 1)}) else {fallback})"
        )
    if kind is Kind.BOOLEAN:
        return f'(True if (v := {value}) == "Yes" else False if v == "No" else {fallback})'
    is_text = "" if typed else "v.__class__ is str and "
    if kind is Kind.DATETIME and utc:
        return (
            f'(None if (v := {value}) is None else v.replace(" ", "T") + "+00:00" '
            f"if {is_text}{_DATETIME_SHAPE} else {fallback})"
        )
    if kind is Kind.DATE:
        return f"(None if (v := {value}) is None else v if {is_text}{_DATE_SHAPE} else {fallback})"
    return f"c{index}({value})"


def _generate(
    plan: Sequence[tuple[str, str, Kind]],
    converters: Sequence[Converter],
    *,
    utc: bool,
    typed: bool,
) -> Callable[[t.Any], dict[str, t.Any]]:
    """The converter for dict rows (`typed=False`) or for rows of `RecordBuilder.row_type`.

    `converters[i]` is `converter_for` field i's kind; `utc`: the query time zone is UTC.
    A dict row's missing field raises KeyError; a wrong value raises ValueError.
    """
    namespace: dict[str, t.Any] = {
        "_datetime": dt.datetime.fromisoformat,
        "_date": dt.date.fromisoformat,
    }
    items = []
    for index, ((field_name, prop, kind), convert) in enumerate(zip(plan, converters, strict=True)):
        namespace[f"c{index}"] = convert
        value = f"row.f{index}" if typed else f"row[{field_name!r}]"
        items.append(
            f"        {prop!r}: {_value_expression(kind, value, index, utc=utc, typed=typed)},"
        )
    source = "def convert(row):\n    return {\n" + "\n".join(items) + "\n    }\n"
    # Generated from field and property names through repr(): no user text is executed.
    exec(compile(source, "<record converter>", "exec"), namespace)  # noqa: S102
    return t.cast("Callable[[t.Any], dict[str, t.Any]]", namespace["convert"])


#: What msgspec checks in C while decoding a row Struct; booleans decode as anything.
_STRUCT_TYPES: dict[Kind, t.Any] = {
    Kind.STRING: t.Optional[str],  # noqa: UP045 - runtime type objects for msgspec
    Kind.NUMBER: t.Optional[t.Union[int, float]],  # noqa: UP007, UP045
    Kind.INTEGER: t.Optional[int],  # noqa: UP045
    Kind.DATETIME: t.Optional[str],  # noqa: UP045
    Kind.DATE: t.Optional[str],  # noqa: UP045
}
_GENERIC_DECODER = msgspec.json.Decoder()


class RecordBuilder:
    """Looker rows -> records of exact JSON types, for one stream's `(field, property, kind)`.

    A `json` result decodes (`decode`) straight into a msgspec Struct with one typed attribute
    per field: msgspec checks in C that strings, numbers and datetime texts are what the field
    needs, and never builds the row's keys, so turning a row into a record is attribute reads
    plus the datetime, date and yesno conversions. A batch that does not fit those types
    (Looker sent a number as a string, a row lacks a field, `looker_error`) decodes as plain
    dicts and goes through the per-value converters instead, which accept, convert or name the
    problem; from then on the stream stays on that path. Both paths give the same records.
    """

    def __init__(self, plan: Sequence[tuple[str, str, Kind]], tz: dt.tzinfo) -> None:
        """Build the converters for `plan`, in the query time zone `tz`."""
        self._plan = list(plan)
        converters = [converter_for(kind, tz) for _name, _prop, kind in plan]
        utc = is_utc(tz)
        self._from_dict = _generate(plan, converters, utc=utc, typed=False)
        names = [name for name, _prop, _kind in plan]
        self._slow = list(zip(names, converters, strict=True))
        self.row_type: type[msgspec.Struct] | None = None
        self._typed: msgspec.json.Decoder[t.Any] | None = None
        if names and len(set(names)) == len(names):
            self.row_type = msgspec.defstruct(
                "LookerRow",
                [(f"f{i}", _STRUCT_TYPES.get(kind, t.Any)) for i, (*_, kind) in enumerate(plan)],
                rename={f"f{i}": name for i, name in enumerate(names)},
                gc=False,  # values are JSON scalars: no reference cycles to collect
            )
            self._typed = msgspec.json.Decoder(list[self.row_type])  # type: ignore[name-defined]
            self._from_struct = _generate(plan, converters, utc=utc, typed=True)

    @property
    def fields(self) -> list[str]:
        """The Looker fields of the rows, in order (a csv result's columns map to them)."""
        return [name for name, _prop, _kind in self._plan]

    def decode(self, data: bytes) -> list[t.Any]:
        """A JSON array of rows: Structs when they fit the field types, else dicts.

        Raises:
            msgspec.DecodeError: `data` is not (complete) JSON.
        """
        if self._typed is not None:
            try:
                return t.cast("list[t.Any]", self._typed.decode(data))
            except msgspec.ValidationError:
                self._typed = None  # valid JSON of other types: the dict path sorts it out
        return t.cast("list[t.Any]", _GENERIC_DECODER.decode(data))

    def records(self, rows: list[t.Any]) -> list[dict[str, t.Any]]:
        """The records of a batch of rows from `decode` (or dicts from a csv result).

        Raises:
            ValueMismatchError: a value is not of its field's type, or a field is missing;
                the message names the field and the value.
        """
        if not rows:
            return []
        typed = type(rows[0]) is self.row_type
        try:
            return list(map(self._from_struct if typed else self._from_dict, rows))
        except (KeyError, ValueError) as exc:  # ValueMismatchError, or fromisoformat's
            for row in rows:
                self._diagnose(self._as_dict(row) if typed else row)
            raise ValueMismatchError(str(exc)) from exc

    def _as_dict(self, row: t.Any) -> dict[str, t.Any]:  # noqa: ANN401 - a row Struct
        return {name: getattr(row, f"f{i}") for i, (name, _p, _k) in enumerate(self._plan)}

    def _diagnose(self, row: Mapping[str, t.Any]) -> None:
        """Raise the error that names the first bad field of `row`, if it has one."""
        for name, conv in self._slow:
            if name not in row:
                msg = f"a row lacks the selected field '{name}'"
                raise ValueMismatchError(msg)
            try:
                conv(row[name])
            except ValueMismatchError as exc:
                msg = f"field '{name}': {exc}"
                raise ValueMismatchError(msg) from None
