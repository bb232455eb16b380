"""What the tap must make of the emulator's rows, written independently of the tap's converters."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

HISTORY_FIELDS = [  # the query_history spec in meltano.yml
    "history.id",
    "history.created_time",
    "history.runtime",
    "history.status",
    "history.source",
    "history.is_single_query",
    "query.model",
    "query.view",
    "user.id",
    "user.email",
]
YESNO = {"history.is_single_query", "user.is_looker", "order_items.is_returned"}


def prop(field: str) -> str:
    """Looker field name -> property name."""
    return field.replace(".", "_")


def is_datetime(field: str) -> bool:
    return field.endswith(("_time", ".time"))


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """A Looker ``json`` row as the Singer record the tap must emit."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is not None and is_datetime(name):
            value = value.replace(" ", "T") + "+00:00"
        elif value is not None and name in YESNO:
            value = {"Yes": True, "No": False}[value]
        out[prop(name)] = value
    return out


def rows_since(  # noqa: PLR0917
    emu: Any, model: str, explore: str, fields: list[str], datetime_field: str, since: str
) -> list[dict[str, Any]]:
    """Rows whose ``datetime_field`` is at or after ``since`` (``YYYY-MM-DD HH:MM:SS``, UTC)."""
    rows = emu.query_rows(model, explore, fields)
    return [
        to_record(r) for r in rows if r[datetime_field] is not None and r[datetime_field] >= since
    ]


def by_key(records: list[dict[str, Any]], *key: str) -> dict[Any, dict[str, Any]]:
    """Records indexed by their key (asserting it is unique)."""
    out = {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in records}
    assert len(out) == len(records), f"duplicate keys on {key}: {len(records) - len(out)}"
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records from a JSONL file (gzip when named .gz); numbers with a point as Decimal."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [
        json.loads(line, parse_float=Decimal)
        for line in raw.decode("utf-8").splitlines()
        if line.strip()
    ]


def same_value(got: Any, want: Any) -> bool:
    """Equal, with the type kept: bools stay bools, None stays None, decimals equal exactly."""
    if want is None or isinstance(want, bool):
        return got is want
    if isinstance(want, float):
        return (
            not isinstance(got, bool)
            and isinstance(got, (float, Decimal, int))
            and Decimal(str(got)) == Decimal(str(want))
        )
    if isinstance(want, int):
        return not isinstance(got, bool) and isinstance(got, (int, Decimal, float)) and got == want
    return bool(got == want) and type(got) is type(want)


def assert_records_match(
    got: list[dict[str, Any]],
    want: list[dict[str, Any]],
    key: tuple[str, ...],
    columns: list[str] | None = None,
) -> None:
    """Same keys, same count, and every column equal with its type kept."""
    got_by, want_by = by_key(got, *key), by_key(want, *key)
    assert len(got) == len(want), f"{len(got)} records landed, {len(want)} expected"
    assert got_by.keys() == want_by.keys()
    cols = columns or sorted(next(iter(want_by.values())).keys()) if want_by else []
    bad = []
    for k, w in want_by.items():
        g = got_by[k]
        for c in cols:
            if not same_value(g.get(c), w[c]):
                bad.append(f"{k}.{c}: got {g.get(c)!r} want {w[c]!r}")
    assert not bad, f"{len(bad)} values differ, e.g.\n" + "\n".join(bad[:15])
