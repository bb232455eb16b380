"""Looker field metadata to JSON Schema, and the value conversions that go with each type.

Pure functions, no I/O. The type families follow Looker's own list of dimension and measure
types (as listed by `lookml_model_explore`'s `supported_measure_types` and the LookML
reference) and the JSON values Looker's `json` results hold for each.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import typing as t
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tap_looker_query.errors import ValueMismatchError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class Kind(enum.Enum):
    """The JSON type family a Looker field's values belong to."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATETIME = "date-time"
    DATE = "date"


_DATETIME_TYPES = frozenset(
    {
        "date_time",
        "datetime",
        "time",
        "date_second",
        "date_minute",
        "date_hour",
        "date_microsecond",
        "date_millisecond",
        *(f"date_hour{n}" for n in (2, 3, 4, 6, 8, 12)),
        *(f"date_minute{n}" for n in (2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
        *(
            f"date_millisecond{n}"
            for n in (2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500)
        ),
    }
)
_DATE_TYPES = frozenset({"date_date", "date_week"})
# Wall-clock text Looker does not convert to the query time zone: `date_raw` is the column as
# the database holds it. Like `convert_tz: no` timeframes, it has no zone the tap could name.
_UNCONVERTED_TYPES = frozenset({"date_raw"})
_INTEGER_TYPES = frozenset(
    {
        "count",
        "count_distinct",
        "date_year",
        "date_fiscal_year",
        "date_hour_of_day",
        "date_day_of_month",
        "date_day_of_year",
        "date_day_of_week_index",
        "date_week_of_year",
        "date_month_num",
        "date_month_number",
        "date_fiscal_month_num",
        "date_fiscal_month_number",
    }
)
_NUMBER_TYPES = frozenset(
    {
        "number",
        "int",
        "distance",
        "duration",
        *(
            f"duration_{unit}"
            for unit in ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
        ),
        "sum",
        "sum_distinct",
        "average",
        "average_distinct",
        "median",
        "median_distinct",
        "percentile",
        "percentile_distinct",
        "running_total",
        "percent_of_total",
        "percent_of_previous",
        # previous / difference / relative_change of an aggregate: always a number
        "period_over_period",
    }
)
# min/max follow the field they aggregate: numeric when Looker says so, text otherwise
# (a max over a date dimension returns the date as Looker renders it).
_FOLLOWS_IS_NUMERIC = frozenset({"min", "max"})
_BOOLEAN_TYPES = frozenset({"yesno"})
_STRING_TYPES = frozenset(
    {
        "string",
        "unquoted",
        "zipcode",
        "tier",
        "bin",
        "location",
        "location_bin_level",
        "list",
        "date",
        "turtle_look",
        "date_month",
        "date_fiscal_month",
        "date_quarter",
        "date_fiscal_quarter",
        "date_quarter_of_year",
        "date_fiscal_quarter_of_year",
        "date_day_of_week",
        "date_month_name",
        "date_time_of_day",
        "date_mweek",
    }
)

#: Every Looker type name this module maps deliberately (anything else is mapped to string,
#: with a warning from the caller).
KNOWN_TYPES = (
    _DATETIME_TYPES
    | _DATE_TYPES
    | _INTEGER_TYPES
    | _NUMBER_TYPES
    | _FOLLOWS_IS_NUMERIC
    | _BOOLEAN_TYPES
    | _STRING_TYPES
    | _UNCONVERTED_TYPES
)


@dataclass(frozen=True)
class LookerField:
    """The parts of Looker's field metadata (`LookmlModelExploreField`) that the tap uses."""

    name: str
    type: str
    category: str = "dimension"
    label: str | None = None
    label_short: str | None = None
    description: str | None = None
    is_numeric: bool = False
    is_timeframe: bool = False
    hidden: bool = False
    #: LookML `convert_tz`; None when Looker did not say (it then converts, the default).
    convert_tz: bool | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, t.Any], category: str | None = None) -> LookerField:
        """Build from a field object as Looker sends it (explore metadata or json_bi)."""
        convert_tz = data.get("convert_tz")
        return cls(
            name=str(data["name"]),
            type=str(data.get("type") or ""),
            category=str(category or data.get("category") or "dimension"),
            label=data.get("label"),
            label_short=data.get("label_short"),
            description=data.get("description"),
            is_numeric=bool(data.get("is_numeric")),
            is_timeframe=bool(data.get("is_timeframe")),
            hidden=bool(data.get("hidden")),
            convert_tz=None if convert_tz is None else bool(convert_tz),
        )

    @classmethod
    def from_json_bi(
        cls,
        data: Mapping[str, t.Any],
        category: str | None,
        sample: t.Any,  # noqa: ANN401
    ) -> LookerField:
        """Build from a `json_bi` field (`JsonBiField`), `sample` being its value in a row.

        `JsonBiField` has no `is_numeric`, which decides whether a `min`/`max` measure is a
        number (over numbers) or text (over dates, strings). The response's own value tells:
        a JSON number is numeric, text is not; with no value to look at (no row, NULL) the
        measure is taken as numeric, as most are, so that a wrong guess fails the window on the
        first text value instead of loading numbers as strings.
        """
        if "is_numeric" in data or str(data.get("type")) not in _FOLLOWS_IS_NUMERIC:
            return cls.from_api(data, category)
        numeric = sample is None or (type(sample) in {int, float})
        return cls.from_api({**data, "is_numeric": numeric}, category)

    @property
    def is_time(self) -> bool:
        """True for fields a time window can filter on (instants, not truncations like months)."""
        return kind_of(self) is Kind.DATETIME


#: Looker types whose family does not depend on the field (checked in this order).
_KIND_OF_TYPE: tuple[tuple[frozenset[str], Kind], ...] = (
    (_DATE_TYPES, Kind.DATE),
    (_INTEGER_TYPES, Kind.INTEGER),
    (_BOOLEAN_TYPES, Kind.BOOLEAN),
    (_NUMBER_TYPES, Kind.NUMBER),
    (_STRING_TYPES, Kind.STRING),
)


def kind_of(field: LookerField) -> Kind | None:
    """The value family of a field, or None when Looker's type is not one we know."""
    looker_type = field.type
    if is_unconverted_time(field):
        # `date_raw`, `convert_tz: no`: Looker shows the database's wall clock, not the
        # query zone's, so it is no instant the tap could give an offset to.
        return Kind.STRING
    if looker_type in _DATETIME_TYPES:
        return Kind.DATETIME
    if looker_type in _FOLLOWS_IS_NUMERIC:
        return Kind.NUMBER if field.is_numeric else Kind.STRING
    return next((kind for types, kind in _KIND_OF_TYPE if looker_type in types), None)


def is_unconverted_time(field: LookerField) -> bool:
    """True for time fields Looker leaves in the database zone (`date_raw`, `convert_tz: no`)."""
    return field.type in _UNCONVERTED_TYPES or (
        field.type in _DATETIME_TYPES and field.convert_tz is False
    )


def property_name(field_name: str) -> str:
    """The Singer property for a Looker field: `history.created_time` -> `history_created_time`."""
    return field_name.replace(".", "_")


def property_schema(field: LookerField, kind: Kind) -> dict[str, t.Any]:
    """JSON Schema of one property; every property is nullable (Looker returns NULLs freely)."""
    schema: dict[str, t.Any]
    if kind in {Kind.DATETIME, Kind.DATE}:
        schema = {"type": ["string", "null"], "format": kind.value}
    else:
        schema = {"type": [kind.value, "null"]}
    schema["title"] = field.label or field.name
    about = f"Looker field `{field.name}` ({field.category}, type `{field.type}`)."
    if kind is Kind.STRING and is_unconverted_time(field):
        about += (
            " Looker does not convert it to the query time zone: the text is the database's"
            " local time, without offset."
        )
    if field.description:
        about = f"{field.description} {about}"
    schema["description"] = about
    return schema


Converter = t.Callable[[t.Any], t.Any]

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)
_INT_RE = re.compile(r"[+-]?\d+")


#: How Looker itself shows the values of a `list` measure.
LIST_SEPARATOR = ", "


def _convert_string(value: t.Any) -> t.Any:  # noqa: ANN401
    if value is None or type(value) is str:
        return value
    if type(value) in {int, float}:
        return str(value)
    # A `list` measure may arrive as a JSON array: the same text as when it arrives joined.
    if type(value) is list and all(
        item is None or type(item) in {str, int, float} for item in value
    ):
        return LIST_SEPARATOR.join(str(item) for item in value if item is not None)
    msg = f"expected text, got {value!r}"
    raise ValueMismatchError(msg)


def _convert_number(value: t.Any) -> t.Any:  # noqa: ANN401
    kind = type(value)
    if value is None or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str:
        text = value.strip()
        if text == "":
            return None
        if _INT_RE.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    msg = f"expected a number, got {value!r}"
    raise ValueMismatchError(msg)


def _convert_integer(value: t.Any) -> t.Any:  # noqa: ANN401
    kind = type(value)
    if value is None or kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    if kind is str:
        text = value.strip()
        if text == "":
            return None
        if _INT_RE.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if number.is_integer():
                return int(number)
    msg = f"expected a whole number, got {value!r}"
    raise ValueMismatchError(msg)


_BOOLEANS = {"Yes": True, "No": False, "yes": True, "no": False, "YES": True, "NO": False}


def _convert_boolean(value: t.Any) -> t.Any:  # noqa: ANN401
    if value is None or type(value) is bool:
        return value
    if type(value) is str:
        if value in _BOOLEANS:
            return _BOOLEANS[value]
        if value == "":
            return None
    msg = f'expected "Yes" or "No", got {value!r}'
    raise ValueMismatchError(msg)


def _convert_date(value: t.Any) -> t.Any:  # noqa: ANN401
    if value is None:
        return None
    if type(value) is str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-":  # noqa: PLR2004
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        if value == "":
            return None
    msg = f"expected a date YYYY-MM-DD, got {value!r}"
    raise ValueMismatchError(msg)


def _offset_text(offset: dt.timedelta | None) -> str:
    minutes = int((offset or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def parse_looker_datetime(value: str, tz: dt.tzinfo) -> dt.datetime:
    """Parse a Looker datetime (naive, in the query time zone, maybe truncated) to aware.

    Accepts `YYYY-MM-DD`, `YYYY-MM-DD HH`, `... HH:MM`, `... HH:MM:SS[.fraction]`, and ISO
    8601 forms with `T` and an offset (which then wins over `tz`).

    Raises:
        ValueMismatchError: the text is not a datetime.
    """
    match = _DATETIME_RE.fullmatch(value.strip())
    if match is None:
        msg = f"expected a datetime YYYY-MM-DD HH:MM:SS, got {value!r}"
        raise ValueMismatchError(msg)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone: dt.tzinfo = tz
    if offset:
        if offset == "Z":
            zone = dt.UTC
        else:
            digits = offset.replace(":", "")
            delta = dt.timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
            zone = dt.timezone(-delta if digits[0] == "-" else delta)
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=zone,
        )
    except ValueError as exc:
        msg = f"expected a datetime YYYY-MM-DD HH:MM:SS, got {value!r} ({exc})"
        raise ValueMismatchError(msg) from exc


def format_datetime(moment: dt.datetime) -> str:
    """One fixed RFC 3339 form, so that bookmarks compare correctly as strings.

    `YYYY-MM-DDTHH:MM:SS+HH:MM` (four-digit year), with six fractional digits only when the
    value has them; a naive value is taken as UTC.
    """
    offset = moment.utcoffset()
    if offset is not None and not offset.microseconds and not offset.seconds % 60:
        return moment.isoformat()
    # Naive, or an offset with seconds (old local mean times): minutes only, as RFC 3339 wants.
    return moment.replace(tzinfo=None).isoformat() + _offset_text(offset)


def is_utc(tz: dt.tzinfo) -> bool:
    """Whether `tz` is UTC (the zone whose datetimes take the fast path)."""
    return tz is dt.UTC or getattr(tz, "key", None) in {"UTC", "Etc/UTC"}


def _datetime_converter(tz: dt.tzinfo) -> Converter:
    utc = is_utc(tz)

    def convert(value: t.Any) -> t.Any:  # noqa: ANN401
        if value is None:
            return None
        if type(value) is not str:
            msg = f"expected a datetime YYYY-MM-DD HH:MM:SS, got {value!r}"
            raise ValueMismatchError(msg)
        # The common case, kept cheap: `YYYY-MM-DD HH:MM:SS` in UTC. With the separators in
        # place, fromisoformat (C) checks the digits and ranges (month 13, February 30).
        if (
            utc
            and len(value) == 19  # noqa: PLR2004
            and value[10] == " "
            and value[13] == ":"
            and value[16] == ":"
            and value[4] == "-"
            and value[7] == "-"
        ):
            try:
                dt.datetime.fromisoformat(value)
            except ValueError as exc:
                msg = f"expected a datetime YYYY-MM-DD HH:MM:SS, got {value!r} ({exc})"
                raise ValueMismatchError(msg) from exc
            return value[:10] + "T" + value[11:] + "+00:00"
        if value == "":
            return None
        return format_datetime(parse_looker_datetime(value, tz))

    return convert


def converter_for(kind: Kind | None, tz: dt.tzinfo) -> Converter:
    """The function that turns a Looker value of this family into its exact JSON value."""
    if kind is Kind.DATETIME:
        return _datetime_converter(tz)
    simple: dict[Kind | None, Callable[[t.Any], t.Any]] = {
        Kind.NUMBER: _convert_number,
        Kind.INTEGER: _convert_integer,
        Kind.BOOLEAN: _convert_boolean,
        Kind.DATE: _convert_date,
    }
    return simple.get(kind, _convert_string)


def timezone(name: str) -> dt.tzinfo:
    """A tzinfo for a Looker `query_timezone` name (IANA names, `UTC`)."""
    if name.upper() in {"UTC", "ETC/UTC", "Z"}:
        return dt.UTC
    return ZoneInfo(name)


def kind_from_schema(prop: Mapping[str, t.Any]) -> Kind:
    """The value family a property's JSON Schema asks for (the catalog may override ours)."""
    types = prop.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    non_null = [name for name in types if name != "null"]
    primary = non_null[0] if non_null else "string"
    if primary == "string":
        return {"date-time": Kind.DATETIME, "date": Kind.DATE}.get(
            prop.get("format", ""), Kind.STRING
        )
    return {"integer": Kind.INTEGER, "number": Kind.NUMBER, "boolean": Kind.BOOLEAN}.get(
        primary, Kind.STRING
    )
