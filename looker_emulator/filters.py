"""Looker filter expressions (``filters`` values and ``filter_expression``) compiled to SQLite.

Grammar and semantics follow Looker's "Looker filter expressions" documentation:
date ``A to B`` is half-open, ``after`` inclusive, ``before`` exclusive; string terms are ORed,
negated terms ANDed; ``^`` escapes; numbers support comparisons, ranges and interval notation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Callable

SQL_TS = "%Y-%m-%d %H:%M:%S"


class FilterError(ValueError):
    """A filter value that does not parse."""


@dataclass
class TimeContext:
    """The zone filter values are interpreted in and the "now" relative filters count from."""

    zone: str
    now: datetime  # aware

    @property
    def tz(self) -> ZoneInfo:
        """The query time zone."""
        return ZoneInfo(self.zone)

    def to_utc_text(self, local: datetime) -> str:
        """A naive local datetime as UTC ``YYYY-MM-DD HH:MM:SS``."""
        return local.replace(tzinfo=self.tz).astimezone(UTC).strftime(SQL_TS)

    def now_local(self) -> datetime:
        """Now as a naive datetime in the query zone."""
        return self.now.astimezone(self.tz).replace(tzinfo=None)


# ---------------------------------------------------------------- datetime filters

Interval = tuple[datetime | None, datetime | None]  # naive local, half-open [lo, hi)

_UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
_UNIT_RE = r"(second|minute|hour|day|week|month|quarter|year|fiscal quarter|fiscal year)s?"
_DT_RE = r"(\d{4})(?:([-/])(\d{2})(?:\2(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?"


def _unit(text: str) -> str:
    u = text.lower().removesuffix("s")
    return u.removeprefix("fiscal ")


def add_units(dt: datetime, n: int, unit: str) -> datetime:
    """``dt`` moved by ``n`` calendar units."""
    if unit in ("month", "quarter", "year"):
        months = n * {"month": 1, "quarter": 3, "year": 12}[unit]
        total = dt.year * 12 + (dt.month - 1) + months
        return dt.replace(year=total // 12, month=total % 12 + 1, day=1)
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit]
    return dt + timedelta(seconds=n * seconds)


def truncate(dt: datetime, unit: str) -> datetime:  # noqa: PLR0911
    """The start of the ``unit`` period containing ``dt`` (weeks start on Monday)."""
    if unit == "second":
        return dt.replace(microsecond=0)
    if unit == "minute":
        return dt.replace(second=0, microsecond=0)
    if unit == "hour":
        return dt.replace(minute=0, second=0, microsecond=0)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def parse_datetime(text: str) -> tuple[datetime, str]:
    """Parse an absolute Looker datetime; returns its start and its precision unit."""
    m = re.fullmatch(_DT_RE, text.strip())
    if not m:
        raise FilterError(f"not a date or time: {text!r}")
    y, _sep, mo, d, h, mi, s = m.groups()
    try:
        if mo is None:
            return datetime(int(y), 1, 1), "year"
        if d is None:
            return datetime(int(y), int(mo), 1), "month"
        if h is None:
            return datetime(int(y), int(mo), int(d)), "day"
        if s is None:
            return datetime(int(y), int(mo), int(d), int(h), int(mi)), "minute"
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)), "second"
    except ValueError as exc:
        raise FilterError(f"not a valid date or time: {text!r}") from exc


def _relative(term: str, now: datetime) -> Interval | None:  # noqa: PLR0911
    t = term.lower()
    if t in ("today", "yesterday", "tomorrow"):
        start = truncate(now, "day") + timedelta(days={"today": 0, "yesterday": -1}.get(t, 1))
        return start, start + timedelta(days=1)
    m = re.fullmatch(r"(this|next|last)\s+" + _UNIT_RE, t)
    if m:
        unit = _unit(m.group(2))
        start = add_units(truncate(now, unit), {"this": 0, "next": 1, "last": -1}[m.group(1)], unit)
        return start, add_units(start, 1, unit)
    m = re.fullmatch(r"(before|after)\s+(\d+)\s+" + _UNIT_RE + r"\s+ago", t)
    if m:
        unit = _unit(m.group(3))
        edge = add_units(truncate(now, unit), -int(m.group(2)), unit)
        return (None, edge) if m.group(1) == "before" else (edge, None)
    m = re.fullmatch(
        r"(\d+)\s+" + _UNIT_RE + r"\s+(ago|from now)(?:\s+for\s+(\d+)\s+" + _UNIT_RE + r")?", t
    )
    if m:
        unit = _unit(m.group(2))
        n = int(m.group(1))
        start = add_units(truncate(now, unit), -n if m.group(3) == "ago" else n, unit)
        if m.group(4):
            return start, add_units(start, int(m.group(4)), _unit(m.group(5)))
        return start, add_units(start, 1, unit)
    m = re.fullmatch(r"(?:last\s+)?(\d+)\s+" + _UNIT_RE, t)
    if m:
        unit = _unit(m.group(2))
        cur = truncate(now, unit)
        return add_units(cur, -(int(m.group(1)) - 1), unit), add_units(cur, 1, unit)
    return None


def datetime_terms(expr: str, now_local: datetime) -> list[Interval | str]:
    """Parse a date/time filter into intervals (naive, query zone) or ``"NULL"``/``"NOT NULL"``."""
    out: list[Interval | str] = []
    for raw in expr.split(","):
        term = raw.strip()
        if not term:
            continue
        low = term.lower()
        if low in ("null", "-null", "not null"):
            out.append("NULL" if low == "null" else "NOT NULL")
            continue
        rel = _relative(term, now_local)
        if rel is not None:
            out.append(rel)
            continue
        m = re.fullmatch(r"(.+?)\s+to\s+(.+)", term, re.IGNORECASE)
        if m:
            out.append((parse_datetime(m.group(1))[0], parse_datetime(m.group(2))[0]))
            continue
        m = re.fullmatch(r"(after|before)\s+(.+)", term, re.IGNORECASE)
        if m:
            start = parse_datetime(m.group(2))[0]
            out.append((start, None) if m.group(1).lower() == "after" else (None, start))
            continue
        m = re.fullmatch(r"(.+?)\s+for\s+(\d+)\s+" + _UNIT_RE, term, re.IGNORECASE)
        if m:
            start = parse_datetime(m.group(1))[0]
            out.append((start, add_units(start, int(m.group(2)), _unit(m.group(3)))))
            continue
        start, unit = parse_datetime(term)
        out.append((start, add_units(start, 1, unit)))
    return out


def datetime_sql(expr: str, utc_sql: str, tc: TimeContext) -> tuple[str, list[object]]:
    """SQL for a date/time filter on a UTC ``YYYY-MM-DD HH:MM:SS`` text expression."""
    parts: list[str] = []
    params: list[object] = []
    for term in datetime_terms(expr, tc.now_local()):
        if isinstance(term, str):  # "NULL" or "NOT NULL"
            parts.append(f"{utc_sql} IS {term}")
        else:
            lo, hi = term
            conds = []
            if lo is not None:
                conds.append(f"{utc_sql} >= ?")
                params.append(tc.to_utc_text(lo))
            if hi is not None:
                conds.append(f"{utc_sql} < ?")
                params.append(tc.to_utc_text(hi))
            parts.append("(" + (" AND ".join(conds) or f"{utc_sql} IS NOT NULL") + ")")
    if not parts:
        return "", []
    return "(" + " OR ".join(parts) + ")", params


# ---------------------------------------------------------------- string filters


def _split_escaped(expr: str) -> list[list[tuple[str, bool]]]:
    """Split on unescaped commas; each char is paired with whether it was ``^``-escaped."""
    terms: list[list[tuple[str, bool]]] = [[]]
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "^" and i + 1 < len(expr):
            terms[-1].append((expr[i + 1], True))
            i += 2
            continue
        if c == ",":
            terms.append([])
        else:
            terms[-1].append((c, False))
        i += 1
    out = []
    for t in terms:
        while t and t[0] == (" ", False):
            t.pop(0)
        while t and t[-1] == (" ", False):
            t.pop()
        out.append(t)
    return out


def string_sql(expr: str, col: str) -> tuple[str, list[object]]:
    """SQL for a string filter (exact, comma-OR, ``-X``, EMPTY, NULL, ``%``/``_`` wildcards)."""
    pos: list[str] = []
    neg: list[str] = []
    params_pos: list[object] = []
    params_neg: list[object] = []
    for term in _split_escaped(expr):
        if not term:
            continue
        negated = term[0] == ("-", False)
        if negated:
            term = term[1:]
        plain = "".join(c for c, _ in term)
        unescaped = all(not e for _, e in term)
        wildcard = any(c in "%_" and not e for c, e in term)
        if unescaped and plain == "EMPTY":
            (neg if negated else pos).append(
                f"({col} IS NOT NULL AND {col} <> '')"
                if negated
                else f"({col} IS NULL OR {col} = '')"
            )
        elif unescaped and plain == "NULL":
            (neg if negated else pos).append(f"{col} IS NOT NULL" if negated else f"{col} IS NULL")
        elif wildcard:
            pattern = "".join(
                ("^" + c if c in "%_^" else c) if e else ("^^" if c == "^" else c) for c, e in term
            )
            if negated:
                neg.append(f"({col} NOT LIKE ? ESCAPE '^' OR {col} IS NULL)")
                params_neg.append(pattern)
            else:
                pos.append(f"{col} LIKE ? ESCAPE '^'")
                params_pos.append(pattern)
        elif negated:
            neg.append(f"({col} <> ? OR {col} IS NULL)")
            params_neg.append(plain)
        else:
            pos.append(f"{col} = ?")
            params_pos.append(plain)
    parts = []
    if pos:
        parts.append("(" + " OR ".join(pos) + ")")
    parts.extend(neg)
    if not parts:
        return "", []
    return "(" + " AND ".join(parts) + ")", params_pos + params_neg


def yesno_sql(expr: str, col: str) -> tuple[str, list[object]]:
    """SQL for a yesno filter (``Yes``/``No``, case-insensitive; comma-OR)."""
    values = []
    for raw in expr.split(","):
        v = raw.strip().lower()
        if not v:
            continue
        if v not in ("yes", "no", "true", "false"):
            raise FilterError(f"not a yesno value: {raw.strip()!r}")
        values.append("Yes" if v in ("yes", "true") else "No")
    if not values:
        return "", []
    return f"{col} IN ({', '.join('?' for _ in values)})", list(values)


# ---------------------------------------------------------------- number filters

_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def _num(text: str) -> float | int:
    v = float(text)
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def _split_top(expr: str) -> list[str]:
    depth = 0
    out = [""]
    for c in expr:
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
        if c == "," and depth == 0:
            out.append("")
        else:
            out[-1] += c
    return [p.strip() for p in out if p.strip()]


def _number_atom(atom: str, col: str) -> tuple[str, list[object], bool]:  # noqa: PLR0911
    a = atom.strip()
    low = a.lower()
    if low == "null":
        return f"{col} IS NULL", [], False
    if low in ("not null", "-null"):
        return f"{col} IS NOT NULL", [], True
    m = re.fullmatch(r"(?:not\s+|<>\s*|!=\s*)(" + _NUM + ")", a, re.IGNORECASE)
    if m:
        return f"({col} <> ? OR {col} IS NULL)", [_num(m.group(1))], True
    m = re.fullmatch(r"(>=|<=|>|<|=)\s*(" + _NUM + ")", a)
    if m:
        return f"{col} {m.group(1)} ?", [_num(m.group(2))], False
    m = re.fullmatch(r"(" + _NUM + r")?\s*to\s*(" + _NUM + r")?", a, re.IGNORECASE)
    if m and (m.group(1) or m.group(2)):
        conds: list[str] = []
        params: list[object] = []
        if m.group(1):
            conds.append(f"{col} >= ?")
            params.append(_num(m.group(1)))
        if m.group(2):
            conds.append(f"{col} <= ?")
            params.append(_num(m.group(2)))
        return "(" + " AND ".join(conds) + ")", params, False
    m = re.fullmatch(
        r"([\[(])\s*(" + _NUM + r"|-inf)?\s*,\s*(" + _NUM + r"|inf)?\s*([\])])", a, re.IGNORECASE
    )
    if m:
        conds, params = [], []
        if m.group(2) and m.group(2).lower() != "-inf":
            conds.append(f"{col} {'>=' if m.group(1) == '[' else '>'} ?")
            params.append(_num(m.group(2)))
        if m.group(3) and m.group(3).lower() != "inf":
            conds.append(f"{col} {'<=' if m.group(4) == ']' else '<'} ?")
            params.append(_num(m.group(3)))
        return "(" + (" AND ".join(conds) or f"{col} IS NOT NULL") + ")", params, False
    if re.fullmatch(_NUM, a):
        return f"{col} = ?", [_num(a)], False
    raise FilterError(f"not a number filter: {atom!r}")


def number_sql(expr: str, col: str) -> tuple[str, list[object]]:
    """SQL for a number filter (``5``, ``NOT 5``, ``>=5 AND <=10``, ``1 to 5``, ``[1, 5)``...)."""
    pos: list[str] = []
    neg: list[str] = []
    pp: list[object] = []
    np_: list[object] = []
    for piece in _split_top(expr):
        ors = re.split(r"\s+OR\s+", piece, flags=re.IGNORECASE)
        or_sql, or_params, all_neg = [], [], True
        for o in ors:
            ands = re.split(r"\s+AND\s+", o, flags=re.IGNORECASE)
            conds: list[str] = []
            params: list[object] = []
            negs = True
            for atom in ands:
                s, p, is_neg = _number_atom(atom, col)
                conds.append(s)
                params += p
                negs = negs and is_neg
            or_sql.append("(" + " AND ".join(conds) + ")")
            or_params += params
            all_neg = all_neg and negs
        sql = "(" + " OR ".join(or_sql) + ")"
        if all_neg and len(ors) == 1:
            neg.append(sql)
            np_ += or_params
        else:
            pos.append(sql)
            pp += or_params
    parts = []
    if pos:
        parts.append("(" + " OR ".join(pos) + ")")
    parts.extend(neg)
    if not parts:
        return "", []
    return "(" + " AND ".join(parts) + ")", pp + np_


# ---------------------------------------------------------------- filter_expression

_FE_TOKEN = re.compile(
    r"""\s*(?:
    (?P<field>\$\{[A-Za-z0-9_]+\.[A-Za-z0-9_]+\})
  | (?P<dt>date_time\s*\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\))
  | (?P<date>date\s*\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\))
  | (?P<isnull>is_null\s*\()
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>>=|<=|!=|<>|=|>|<|\+|-|\*|/|\(|\)|,)
  | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)


@dataclass
class FilterExpression:
    """A translated ``filter_expression``: SQL, parameters and the fields it references."""

    sql: str
    params: list[object]
    fields: list[str]
    bounds: list[tuple[str, str, str]]  # (field, op, "YYYY-MM-DD HH:MM:SS") for pure AND chains


def translate_filter_expression(expr: str, field_sql: Callable[[str], str]) -> FilterExpression:
    """Translate a Looker-expression custom filter into SQL (``field_sql`` maps ``view.field``)."""
    pos = 0
    out: list[str] = []
    params: list[object] = []
    fields: list[str] = []
    tokens: list[tuple[str, str]] = []
    text = expr.strip()
    while pos < len(text):
        m = _FE_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot parse filter_expression near {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
    paren_stack: list[bool] = []
    for kind, val in tokens:
        if kind == "field":
            name = val[2:-1]
            fields.append(name)
            out.append(field_sql(name))
        elif kind == "dt":
            y, mo, d, h, mi, s = (int(x) for x in re.findall(r"\d+", val))
            out.append("?")
            params.append(f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}")
        elif kind == "date":
            y, mo, d = (int(x) for x in re.findall(r"\d+", val))
            out.append("?")
            params.append(f"{y:04d}-{mo:02d}-{d:02d}")
        elif kind == "isnull":
            out.append("(")
            paren_stack.append(True)
        elif kind == "str":
            out.append("?")
            params.append(re.sub(r"\\(.)", r"\1", val[1:-1]))
        elif kind == "num":
            out.append(val)
        elif kind == "op":
            if val == "(":
                paren_stack.append(False)
                out.append("(")
            elif val == ")":
                is_null = paren_stack.pop() if paren_stack else False
                out.append(" IS NULL)" if is_null else ")")
            else:
                out.append({"!=": "<>"}.get(val, val))
        else:
            w = val.lower()
            if w in ("and", "or", "not"):
                out.append(f" {w.upper()} ")
            elif w in ("yes", "no"):
                out.append("?")
                params.append("Yes" if w == "yes" else "No")
            elif w in ("true", "false"):
                out.append("1" if w == "true" else "0")
            elif w == "null":
                out.append("NULL")
            else:
                raise FilterError(f"unknown word in filter_expression: {val!r}")
    if paren_stack:
        raise FilterError("unbalanced parentheses in filter_expression")
    bounds: list[tuple[str, str, str]] = []
    if not any(k == "word" and v.lower() in ("or", "not") for k, v in tokens):
        for i in range(len(tokens) - 2):
            (k1, v1), (k2, v2), (k3, v3) = tokens[i : i + 3]
            if k1 == "field" and k2 == "op" and k3 == "dt" and v2 in (">", ">=", "<", "<="):
                y, mo, d, h, mi, s = (int(x) for x in re.findall(r"\d+", v3))
                stamp = f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
                bounds.append((v1[2:-1], v2, stamp))
    return FilterExpression("(" + " ".join(out) + ")", params, fields, bounds)
