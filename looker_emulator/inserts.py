"""``LookerEmulator.insert_rows``: new rows keyed by Looker dimension names, written to SQLite."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looker_emulator.engine import Database
    from looker_emulator.lookml import Field, Model, View

_COLUMN = re.compile(r'^"([A-Za-z0-9_]+)"\."([A-Za-z0-9_]+)"$')
_JOIN_ON = re.compile(
    r'^"([A-Za-z0-9_]+)"\."([A-Za-z0-9_]+)" = "([A-Za-z0-9_]+)"\."([A-Za-z0-9_]+)"$'
)


def _column_of(f: Field) -> str | None:
    """The table column behind a dimension, or None when it is computed."""
    sql = f.raw_sql or (f.sql if isinstance(f.sql, str) else None)
    if sql is None:
        return None
    m = _COLUMN.match(sql)
    if m:
        return m.group(2)
    m = re.match(
        r'^CASE WHEN ("[A-Za-z0-9_]+"\."[A-Za-z0-9_]+") THEN \'Yes\' ELSE \'No\' END$', sql
    )
    if m:
        return _COLUMN.match(m.group(1)).group(2)  # type: ignore[union-attr]
    return None


def _convert(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "yesno":
        if isinstance(value, str):
            return 1 if value.strip().lower() in ("yes", "true", "1") else 0
        return 1 if value else 0
    if f.raw_sql is not None:
        text = str(value).replace("T", " ")
        if len(text) == 10:
            text += " 00:00:00"
        return text[:19]
    return value


def _row_for_view(view: View, names: dict[str, Field], row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        f = names.get(key)
        if f is None or f.view != view.name:
            continue
        col = _column_of(f)
        if col is None:
            msg = f"{key} is computed, not stored; give the fields it is computed from"
            raise ValueError(msg)
        out[col] = _convert(f, value)
    return out


def _upsert(db: Database, table: str, pk: str, values: dict[str, Any]) -> Any:
    conn = db.conn
    if values.get(pk) is None:
        values[pk] = conn.execute(f"SELECT COALESCE(MAX({pk}), 0) + 1 FROM {table}").fetchone()[0]
    exists = conn.execute(f"SELECT 1 FROM {table} WHERE {pk} = ?", [values[pk]]).fetchone()
    if exists:
        sets = ", ".join(f"{c} = ?" for c in values if c != pk)
        if sets:
            conn.execute(
                f"UPDATE {table} SET {sets} WHERE {pk} = ?",
                [v for c, v in values.items() if c != pk] + [values[pk]],
            )
    else:
        cols = ", ".join(values)
        conn.execute(
            f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in values)})",
            list(values.values()),
        )
    return values[pk]


def insert_rows(
    db: Database, model: Model, explore_or_table: str, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` into the base table of ``explore_or_table`` (an explore or view name).

    Keys are Looker field names of that explore's stored dimensions; a time dimension group takes
    any of its timeframes (naive UTC ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD``); yesno takes
    ``"Yes"``/``"No"`` or booleans. Keys of a joined view (``user.name``) upsert that view's row
    (by its primary key when given, else a new one) and point the base row's foreign key at it.
    """
    explore = model.explores.get(explore_or_table)
    if explore is None:
        for e in model.explores.values():
            for v in e.views:
                if v.name == explore_or_table:
                    explore = type(e)(v.name, v)
                    break
            if explore is not None:
                break
    if explore is None:
        msg = f"unknown explore or table {explore_or_table!r} in model {model.name}"
        raise KeyError(msg)
    if explore.source is not None:
        msg = "the synthetic explore is generated, not stored: set synthetic_rows instead"
        raise ValueError(msg)
    names = explore.fields_by_name()
    unknown = [k for k in {k for r in rows for k in r} if k not in names]
    if unknown:
        msg = f"not fields of {model.name}::{explore.name}: {sorted(unknown)}"
        raise KeyError(msg)
    with db.lock:
        db.conn.execute("BEGIN")
        try:
            for row in rows:
                base_values = _row_for_view(explore.base, names, row)
                for j in explore.joins:
                    jv = _row_for_view(j.view, names, row)
                    m = _JOIN_ON.match(j.on)
                    if not jv or m is None or m.group(1) != explore.base.name:
                        continue
                    base_values[m.group(2)] = _upsert(db, j.view.table, m.group(4), jv)
                _upsert(db, explore.base.table, explore.base.primary_key, base_values)
            db.conn.execute("COMMIT")
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
