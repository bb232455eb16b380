"""Result formats, written as a stream of byte chunks while rows are produced.

``json`` (rows keyed ``view.field``), ``json_label``, ``json_bi`` (metadata + rows),
``json_detail`` (legacy), ``csv`` (label header), ``txt`` (tab separated), ``html``, ``md`` and
``sql``. Nothing here holds more than one chunk of a result.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a test dependency

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


from looker_emulator import shaping
from looker_emulator.engine import ApiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from looker_emulator.engine import Compiled
    from looker_emulator.lookml import Field

CHUNK = 64 * 1024
CONTENT_TYPES = {
    "json": "application/json",
    "json_label": "application/json",
    "json_bi": "application/json",
    "json_detail": "application/json",
    "csv": "text/csv; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "sql": "application/sql; charset=utf-8",
}
SUPPORTED = tuple(CONTENT_TYPES)
DATETIME_TYPES = {"date_time", "date_date", "date_raw", "date_second", "date_minute", "date_hour"}
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Looker</title></head><body>"
    "<h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n"
)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return _dumps(obj)


def json_bi_field(f: Field) -> dict[str, Any]:
    """A ``JsonBiField`` for one result column (exactly the spec's properties)."""
    md = f.metadata()
    return {
        "name": f.name,
        "label": md["label"],
        "view": f.view,
        "view_label": md["view_label"],
        "type": f.type,
        "category": f.category,
        "dimension_group": f.dimension_group,
        "field_group_label": md["field_group_label"],
        "field_group_variant": md["field_group_variant"] or "",
        "sql": md["sql"],
        "hidden": f.hidden,
        "description": f.description,
    }


def json_bi_metadata(c: Compiled) -> dict[str, Any]:
    """The ``JsonBiMetadata`` block of a ``json_bi`` result."""
    return {
        "big_query_metadata": {"total_bytes_processed": 0, "backend_cache_hit": False},
        "fields": {
            "dimensions": [json_bi_field(f) for f in c.columns if f.category == "dimension"],
            "measures": [json_bi_field(f) for f in c.columns if f.category == "measure"],
            "pivots": [],
            "table_calculations": [],
        },
        "pivots": [],
        "has_subtotals": False,
        "has_totals": False,
        "columns_truncated": "false",
        "filter_expression": c.filter_expression,
        "filters": c.filters,
        "sql": c.sql,
    }


def error_body(fmt: str, c: Compiled | None, message: str) -> tuple[str, bytes]:
    """Content type and body of a database error inside a 200 answer."""
    if fmt == "json_bi" and c is not None:
        return CONTENT_TYPES[fmt], dumps(
            {"metadata": json_bi_metadata(c), "rows": [{"looker_error": message}]}
        )
    if fmt == "json_detail":
        return CONTENT_TYPES[fmt], dumps(
            {
                "id": uuid.uuid4().hex,
                "runtime": 0.0,
                "sql": c.sql if c else None,
                "data": [],
                "errors": [{"message": message, "message_details": None, "sql_error_loc": None}],
            }
        )
    if fmt in ("csv", "txt", "html", "md", "sql"):
        return CONTENT_TYPES.get(
            fmt, "text/plain; charset=utf-8"
        ), f"looker_error\n{message}\n".encode()
    return "application/json", dumps([{"looker_error": message}])


class _Mangler:
    """Applies a ``malform_next`` kind to row dicts."""

    def __init__(self, kind: str | None, columns: list[Field]) -> None:
        self.kind = kind
        self.target: str | None = None
        if kind == "missing_field":
            self.target = columns[-1].name
        elif kind == "wrong_type":
            nums = [f for f in columns if f.is_numeric]
            self.target = (nums or columns)[0].name
        elif kind == "bad_datetime":
            dts = [f for f in columns if f.type in DATETIME_TYPES]
            self.target = (dts or columns)[0].name

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.target is None:
            return row
        if self.kind == "missing_field":
            row.pop(self.target, None)
        elif self.kind == "wrong_type":
            row[self.target] = "Yes" if isinstance(row.get(self.target), (int, float)) else 12345
        elif self.kind == "bad_datetime":
            v = row.get(self.target)
            try:
                dt = datetime.fromisoformat(str(v)[:19])
            except ValueError:
                dt = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
            row[self.target] = dt.strftime("%m/%d/%Y %H:%M")
        return row


def _paced(rows: Iterable[tuple[Any, ...]], row_latency: float) -> Iterator[tuple[Any, ...]]:
    if row_latency <= 0:
        yield from rows
        return
    owed = 0.0
    for r in rows:
        owed += row_latency
        if owed >= 0.005:
            time.sleep(owed)
            owed = 0.0
        yield r
    if owed:
        time.sleep(owed)


def _buffered(parts: Iterable[bytes]) -> Iterator[bytes]:
    """Coalesce small parts into chunks of ~64 KiB, flushing at least every 0.1 s."""
    buf = bytearray()
    last = time.monotonic()
    for p in parts:
        buf += p
        if len(buf) >= CHUNK or (time.monotonic() - last > 0.1):
            yield bytes(buf)
            buf.clear()
            last = time.monotonic()
    if buf:
        yield bytes(buf)


def render(
    fmt: str,
    c: Compiled,
    rows: Iterable[tuple[Any, ...]],
    *,
    row_latency: float = 0.0,
    malform: str | None = None,
) -> Iterator[bytes]:
    """Yield the body of a ``fmt`` result of ``c`` over ``rows``, chunk by chunk.

    A pivoted or table-calculated result (``c.shape``) is folded by ``shaping`` first.
    """
    if c.shape is not None:
        if fmt not in shaping.SHAPED_FORMATS:
            raise ApiError(400, f"pivoted or table-calculated results in {fmt} are not emulated")
        yield from _buffered(shaping.render(fmt, c, _paced(rows, row_latency)))
        return
    names = [f.name for f in c.columns]
    labels = [f.label for f in c.columns]
    mangle = _Mangler(malform, c.columns)
    paced = _paced(rows, row_latency)

    def dict_rows(keys: list[str]) -> Iterator[bytes]:
        first = True
        for r in paced:
            d = mangle(dict(zip(keys, r, strict=True)))
            yield (b"" if first else b",\n") + dumps(d)
            first = False

    def gen() -> Iterator[bytes]:
        if fmt == "json":
            yield b"["
            yield from dict_rows(names)
            yield b"]"
        elif fmt == "json_label":
            yield b"["
            yield from dict_rows(labels)
            yield b"]"
        elif fmt == "json_bi":
            yield b'{"metadata":' + dumps(json_bi_metadata(c)) + b',"rows":['
            yield from dict_rows(names)
            yield b"]}"
        elif fmt == "json_detail":
            head = shaping.detail_head(
                c,
                {
                    "dimensions": [f.metadata() for f in c.columns if f.category == "dimension"],
                    "measures": [f.metadata() for f in c.columns if f.category == "measure"],
                    "table_calculations": [],
                    "pivots": [],
                },
                [],
            )
            yield dumps(head)[:-1] + b',"data":['
            first = True
            for r in paced:
                d = mangle(dict(zip(names, r, strict=True)))
                yield (b"" if first else b",") + dumps({k: {"value": v} for k, v in d.items()})
                first = False
            yield b"]}"
        elif fmt in ("csv", "txt"):
            out = io.StringIO()
            w = csv.writer(out, lineterminator="\n", delimiter="," if fmt == "csv" else "\t")
            w.writerow(labels)
            for r in paced:
                if mangle.target is None:
                    w.writerow(["" if v is None else v for v in r])
                else:
                    d = mangle(dict(zip(names, r, strict=True)))
                    w.writerow(["" if d.get(n) is None else d.get(n) for n in names if n in d])
                if out.tell() > CHUNK:
                    yield out.getvalue().encode()
                    out.seek(0)
                    out.truncate()
            yield out.getvalue().encode()
        elif fmt == "html":
            yield (
                b"<table>\n<tr>"
                + "".join(f"<th>{html.escape(x)}</th>" for x in labels).encode()
                + b"</tr>\n"
            )
            for r in paced:
                cells = "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in r)
                yield f"<tr>{cells}</tr>\n".encode()
            yield b"</table>\n"
        elif fmt == "md":
            yield ("| " + " | ".join(labels) + " |\n|" + "---|" * len(labels) + "\n").encode()
            for r in paced:
                yield (
                    "| "
                    + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in r)
                    + " |\n"
                ).encode()
        elif fmt == "sql":
            yield c.sql.encode()
        else:  # pragma: no cover - callers check SUPPORTED
            msg = f"unsupported format {fmt}"
            raise ValueError(msg)

    if malform == "html":
        yield HTML_PAGE.encode()
        return
    if malform == "empty":
        return
    if malform == "invalid_json":
        body = b"".join(_take_bytes(gen(), 400))
        cut = max(body.find(b'"', 3) + 4, 3)
        yield body[:cut]
        return
    yield from _buffered(gen())


def _take_bytes(chunks: Iterator[bytes], n: int) -> Iterator[bytes]:
    got = 0
    for ch in chunks:
        yield ch
        got += len(ch)
        if got >= n:
            return
