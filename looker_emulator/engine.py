"""The query engine: a Looker query body compiled to SQLite and run as a stream of rows."""

from __future__ import annotations

import re
import sqlite3
import statistics
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from looker_emulator.filters import (
    FilterError,
    TimeContext,
    datetime_sql,
    datetime_terms,
    number_sql,
    string_sql,
    translate_filter_expression,
    yesno_sql,
)
from looker_emulator.lookml import Explore, Field, Model, QueryContext
from looker_emulator.shaping import DynamicFieldError, Shape, dynamic_fields

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_LIMIT = 5000
FETCH_BATCH = 500


class ApiError(Exception):
    """An HTTP error answer in Looker's shape (``Error`` or ``ValidationError``)."""

    def __init__(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        """Create the error; ``errors`` makes it a 422-style ``ValidationError``."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class LookerDbError(Exception):
    """A database error: Looker answers it inside a 200 result (``looker_error``)."""


# ---------------------------------------------------------------- SQLite functions


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _lk_tz(ts: str | None, zone: str) -> str | None:
    if ts is None:
        return None
    dt = datetime.fromisoformat(ts[:19]).replace(tzinfo=UTC).astimezone(_zone(zone))
    return dt.strftime("%Y-%m-%d %H:%M:%S")


class _Collect:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def step(self, value: Any) -> None:
        if value is not None:
            self.values.append(value)


class _Median(_Collect):
    def finalize(self) -> Any:
        return statistics.median(self.values) if self.values else None


def _percentile(values: list[Any], p: float) -> Any:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class _Percentile:
    def __init__(self) -> None:
        self.values: list[Any] = []
        self.p = 50.0

    def step(self, value: Any, p: float) -> None:
        self.p = p
        if value is not None:
            self.values.append(value)

    def finalize(self) -> Any:
        return _percentile(self.values, self.p)


class _Distinct:
    """Aggregates over distinct keys (Looker's ``*_distinct`` and symmetric aggregates)."""

    def __init__(self) -> None:
        self.seen: dict[Any, Any] = {}
        self.p = 50.0

    def step(self, key: Any, value: Any, p: float = 50.0) -> None:
        self.p = p
        if key is not None and value is not None:
            self.seen.setdefault(key, value)


class _SumDistinct(_Distinct):
    def finalize(self) -> Any:
        return sum(self.seen.values()) if self.seen else None


class _AvgDistinct(_Distinct):
    def finalize(self) -> Any:
        return sum(self.seen.values()) / len(self.seen) if self.seen else None


class _MedianDistinct(_Distinct):
    def finalize(self) -> Any:
        return statistics.median(self.seen.values()) if self.seen else None


class _PercentileDistinct(_Distinct):
    def finalize(self) -> Any:
        return _percentile(list(self.seen.values()), self.p)


class _List(_Collect):
    def finalize(self) -> Any:
        return ", ".join(sorted({str(v) for v in self.values})) if self.values else None


def register_functions(conn: sqlite3.Connection) -> None:
    """Install the functions and aggregates compiled queries use."""
    conn.create_function("lk_tz", 2, _lk_tz, deterministic=True)
    conn.create_aggregate("lk_median", 1, _Median)
    # typeshed's aggregate protocol only has a one-argument step(); these take two or three.
    conn.create_aggregate("lk_percentile", 2, _Percentile)  # type: ignore[arg-type]
    conn.create_aggregate("lk_sum_distinct", 2, _SumDistinct)  # type: ignore[arg-type]
    conn.create_aggregate("lk_avg_distinct", 2, _AvgDistinct)  # type: ignore[arg-type]
    conn.create_aggregate("lk_median_distinct", 2, _MedianDistinct)  # type: ignore[arg-type]
    conn.create_aggregate("lk_percentile_distinct", 3, _PercentileDistinct)  # type: ignore[arg-type]
    conn.create_aggregate("lk_list", 1, _List)
    conn.execute("PRAGMA case_sensitive_like = ON")


class Database:
    """One SQLite in-memory database, shared by server threads under a lock.

    It owns its connection: :meth:`close` it (or use it as a context manager) when done, since an
    unclosed connection is a ``ResourceWarning`` from Python 3.13 on.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap ``conn`` (opened with ``check_same_thread=False``)."""
        self.conn = conn
        self.lock = threading.RLock()
        self.closed = False
        register_functions(conn)

    def close(self) -> None:
        """Close the connection (idempotent); later queries fail with :class:`LookerDbError`."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()

    def __enter__(self) -> Self:
        """Use the database in a ``with`` block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close it on leaving the block."""
        self.close()

    @classmethod
    def empty(cls) -> Database:
        """A new empty in-memory database."""
        return cls(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))

    def clone(self) -> Database:
        """A copy of this database (SQLite backup API into a new in-memory database)."""
        new = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        try:
            with self.lock:
                self.conn.backup(new)
        except BaseException:
            new.close()
            raise
        return Database(new)

    def stream(self, sql: str, params: list[object]) -> Iterator[tuple[Any, ...]]:
        """Run ``sql`` and yield rows in batches without materialising the result."""
        with self.lock:
            try:
                cur = self.conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise LookerDbError(str(exc)) from exc
        try:
            while True:
                with self.lock:
                    try:
                        batch = cur.fetchmany(FETCH_BATCH)
                    except sqlite3.Error as exc:
                        raise LookerDbError(str(exc)) from exc
                if not batch:
                    return
                yield from batch
        finally:
            with self.lock:
                if not self.closed:  # closing the connection closed its cursors
                    cur.close()


# ---------------------------------------------------------------- query bodies

WRITABLE_KEYS = (
    "model",
    "view",
    "fields",
    "pivots",
    "fill_fields",
    "filters",
    "filter_expression",
    "sorts",
    "limit",
    "column_limit",
    "total",
    "row_total",
    "subtotals",
    "vis_config",
    "filter_config",
    "visible_ui_sections",
    "dynamic_fields",
    "client_id",
    "query_timezone",
)


def normalize_body(body: Any) -> dict[str, Any]:
    """Check a ``WriteQuery`` body; answer 422 like Looker when it is not one."""
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "Validation Failed",
            [{"field": "body", "code": "invalid", "message": "Request body must be a JSON object"}],
        )
    errors = []
    for key in ("model", "view"):
        if not body.get(key) or not isinstance(body.get(key), str):
            errors.append({"field": key, "code": "missing", "message": "This field is required."})
    for key in ("fields", "sorts", "pivots", "fill_fields", "subtotals"):
        v = body.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            errors.append(
                {"field": key, "code": "invalid", "message": "must be an array of strings"}
            )
    flt = body.get("filters")
    if flt is not None and not isinstance(flt, dict):
        errors.append({"field": "filters", "code": "invalid", "message": "must be an object"})
    if errors:
        raise ApiError(422, "Validation Failed", errors)
    return {k: body[k] for k in WRITABLE_KEYS if k in body}


def parse_limit(value: Any) -> int | None:
    """Looker's row limit: ``None``/absent -> 5000, ``-1`` -> unlimited (``None``)."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        n = int(str(value).strip())
    except ValueError as exc:
        raise ApiError(
            422,
            "Validation Failed",
            [{"field": "limit", "code": "invalid", "message": "limit must be an integer"}],
        ) from exc
    return None if n < 0 else n


# ---------------------------------------------------------------- compilation


@dataclass
class Compiled:
    """A query ready to run: SQL, parameters, output fields and metadata for the formats."""

    model: Model
    explore: Explore
    sql: str
    params: list[object]
    columns: list[Field]
    limit: int | None
    timezone: str
    filters: dict[str, str] = field(default_factory=dict)
    filter_expression: str | None = None
    synthetic: Any = None  # (source, lo, hi, descending) for the synthetic explore
    #: Pivots and table calculations applied after the SQL (`shaping`), or None.
    shape: Shape | None = None
    #: The result says it came from Looker's cache (`Faults.serve_from_cache`).
    from_cache: bool = False


_ALIAS = re.compile(r'"([A-Za-z0-9_]+)"\."')
_REF = re.compile(r"\$\{([A-Za-z0-9_]+\.[A-Za-z0-9_]+)\}")


class Compiler:
    """Compiles one query body against one explore."""

    def __init__(
        self,
        model: Model,
        explore: Explore,
        body: dict[str, Any],
        now: datetime,
        *,
        server_table_calcs: bool = False,
    ) -> None:
        """Prepare to compile ``body`` (a normalized WriteQuery) against ``explore``.

        Table calculations are computed only with ``server_table_calcs`` (as Looker's API).
        """
        self.model = model
        self.explore = explore
        self.body = body
        self.by_name = explore.fields_by_name()
        self.server_table_calcs = server_table_calcs
        tz = body.get("query_timezone") or "UTC"
        if tz.lower() == "utc":
            tz = "UTC"
        try:
            _zone(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "field": "query_timezone",
                        "code": "invalid",
                        "message": f"Unknown time zone {tz}",
                    }
                ],
            ) from exc
        self.ctx = QueryContext(timezone=tz)
        self.tc = TimeContext(tz, now)
        self.views: set[str] = {explore.base.name}
        try:
            self.dynamic = dynamic_fields(
                body.get("dynamic_fields"), self.by_name, explore.base.name, self.dim_sql
            )
        except DynamicFieldError as exc:
            raise ApiError(400, str(exc)) from exc

    def _note_views(self, sql: str) -> str:
        self.views.update(_ALIAS.findall(sql))
        return sql

    def dim_sql(self, f: Field) -> str:
        """SQL of a dimension in the query's context."""
        s = f.sql(self.ctx) if callable(f.sql) else (f.sql or "NULL")
        return self._note_views(s)

    def measure_sql(self, f: Field) -> str:  # noqa: PLR0911
        """SQL of an aggregate measure (post-SQL measures are handled by :meth:`compile`)."""
        of = self._expand(f.measure_of) if f.measure_of else None
        view = self.explore.view_of(f.view)
        is_base = view is self.explore.base
        pk = self._note_views(view.col(view.primary_key))
        t = f.type
        if t == "count":
            return "COUNT(*)" if is_base else f"COUNT(DISTINCT {pk})"
        if t == "count_distinct":
            return f"COUNT(DISTINCT {of})"
        if t == "sum":
            return f"SUM({of})" if is_base else f"lk_sum_distinct({pk}, {of})"
        if t == "average":
            return f"AVG({of})" if is_base else f"lk_avg_distinct({pk}, {of})"
        if t in ("min", "max"):
            return f"{t.upper()}({of})"
        if t == "median":
            return f"lk_median({of})"
        if t == "percentile":
            return f"lk_percentile({of}, {f.percentile})"
        key = self._expand(f.distinct_key) if f.distinct_key else pk
        if t == "sum_distinct":
            return f"lk_sum_distinct({key}, {of})"
        if t == "average_distinct":
            return f"lk_avg_distinct({key}, {of})"
        if t == "median_distinct":
            return f"lk_median_distinct({key}, {of})"
        if t == "percentile_distinct":
            return f"lk_percentile_distinct({key}, {of}, {f.percentile})"
        if t == "list":
            return f"lk_list({of})"
        if t in ("number", "string"):
            return f"({of})"
        if t == "date":
            return f"substr({of}, 1, 10)"
        if t == "yesno":
            return f"CASE WHEN {of} THEN 'Yes' ELSE 'No' END"
        raise ApiError(400, f"Unsupported measure type {t} for {f.name}")

    def _expand(self, sql: str) -> str:
        def sub(m: re.Match[str]) -> str:
            ref = self.by_name.get(m.group(1))
            if ref is None:
                raise ApiError(400, f"Invalid field reference: {m.group(1)}")
            return self.field_sql(ref)

        return self._note_views(_REF.sub(sub, sql))

    def field_sql(self, f: Field) -> str:
        """SQL of any dimension or aggregate measure."""
        return self.measure_sql(f) if f.category == "measure" else self.dim_sql(f)

    def filter_sql(self, f: Field, value: str) -> tuple[str, list[object], bool]:
        """SQL for ``filters[f] = value``; the flag says whether it belongs in HAVING."""
        if f.category == "filter":
            target = self.by_name.get(f.applies_to or "")
            if target is None:
                return "", [], False
            return self.filter_sql(target, value)
        try:
            if f.category == "measure":
                if f.is_post_sql:
                    raise ApiError(400, f"Invalid filter: {f.name}")
                col = self.measure_sql(f)
                s, p = self._by_kind(f, value, col)
                return s, p, True
            if f.filter_kind == "datetime" and f.raw_sql:
                s, p = datetime_sql(value, self._note_views(f.raw_sql), self.tc)
                return s, p, False
            s, p = self._by_kind(f, value, self.dim_sql(f))
        except FilterError as exc:
            raise ApiError(400, f"Invalid filter value for {f.name}: {exc}") from exc
        return s, p, False

    def _by_kind(self, f: Field, value: str, col: str) -> tuple[str, list[object]]:
        kind = f.filter_kind
        if kind == "number":
            return number_sql(value, col)
        if kind == "yesno":
            return yesno_sql(value, col)
        if kind == "datetime":
            return datetime_sql(value, col, self.tc)
        return string_sql(value, col)

    def compile(self, limit_override: Any = None) -> Compiled:
        """Compile the body; ``limit_override`` is the run endpoint's ``limit`` parameter."""
        body = self.body
        names: list[str] = []
        calc_names = {calc.name for calc in self.dynamic.calcs}
        for n in body.get("fields") or []:
            if n not in names and n not in self.dynamic.disabled and n not in calc_names:
                names.append(n)
        if not names:
            raise ApiError(
                422,
                "Validation Failed",
                [{"field": "fields", "code": "missing", "message": "This field is required."}],
            )
        columns: list[Field] = []
        for n in names:
            f = self.by_name.get(n)
            if f is None or f.category not in ("dimension", "measure"):
                raise ApiError(400, f"Invalid field: {n}")
            columns.append(f)
        filters: dict[str, str] = {
            str(k): "" if v is None else str(v) for k, v in (body.get("filters") or {}).items()
        }
        for k, v in filters.items():
            f = self.by_name.get(k)
            if f is None:
                raise ApiError(400, f"Invalid filter: {k}")
            if f.category == "parameter":
                if f.allowed_values and v not in f.allowed_values:
                    raise ApiError(400, f"Invalid filter value for {k}: {v!r}")
                self.ctx.parameters[k] = v
        where: list[str] = []
        having: list[str] = []
        wparams: list[object] = []
        hparams: list[object] = []
        synth_bounds: list[tuple[str | None, str | None]] = []
        for k, v in filters.items():
            f = self.by_name[k]
            if f.category == "parameter" or v.strip() == "":
                continue
            s, p, is_having = self.filter_sql(f, v)
            if not s:
                continue
            (having if is_having else where).append(s)
            (hparams if is_having else wparams).extend(p)
            if self.explore.source is not None and f.dimension_group == "synthetic.created":
                synth_bounds.extend(self._utc_intervals(f, v))
        fexpr = body.get("filter_expression")
        fe_bounds: list[tuple[str, str, str]] = []
        if fexpr and str(fexpr).strip():

            def ref(name: str) -> str:
                f = self.by_name.get(name)
                if f is None or f.category not in ("dimension", "measure"):
                    raise ApiError(400, f"Invalid filter_expression: unknown field {name}")
                return self.field_sql(f)

            try:
                fe = translate_filter_expression(str(fexpr), ref)
            except FilterError as exc:
                raise ApiError(400, f"Invalid filter_expression: {exc}") from exc
            if any(self.by_name[n].category == "measure" for n in fe.fields):
                having.append(fe.sql)
                hparams.extend(fe.params)
            else:
                where.append(fe.sql)
                wparams.extend(fe.params)
            fe_bounds = fe.bounds

        # SELECT list: aggregates and dimensions; post-SQL measures need their base measure.
        dims = [f for f in columns if f.category == "dimension"]
        measures = [f for f in columns if f.category == "measure"]
        inner: list[Field] = [f for f in columns if not f.is_post_sql]
        post = [f for f in columns if f.is_post_sql]
        for post_field in post:
            base = self.by_name.get((post_field.measure_of or "")[2:-1])
            if base is None:
                raise ApiError(400, f"Invalid measure {post_field.name}")
            if base not in inner:
                inner.append(base)
        select = [f"{self.field_sql(f)} AS c{i}" for i, f in enumerate(inner)]
        shape = self._shape(columns)
        base_pk = self.explore.base.primary_key
        has_pk = any(f.view == self.explore.base.name and f.short == base_pk for f in dims)
        group = bool(measures) or not has_pk
        # ORDER BY
        order = self._order(columns)
        synthetic = None
        if self.explore.source is not None:
            synthetic, order = self._synthetic_plan(order, synth_bounds, fe_bounds)
        from_sql = self._from_sql(synthetic)
        sql = f"SELECT {', '.join(select)} FROM {from_sql}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if group and dims:
            sql += " GROUP BY " + ", ".join(str(inner.index(f) + 1) for f in dims)
        if having:
            sql += " HAVING " + " AND ".join(having)
        params = wparams + hparams
        limit = parse_limit(
            limit_override if limit_override not in (None, "") else body.get("limit")
        )
        order_sql = ""
        if order:
            order_sql = " ORDER BY " + ", ".join(
                f"c{inner.index(f) if f in inner else 0}{' DESC' if desc else ''}"
                for f, desc in order
                if not f.is_post_sql
            )
        if post:
            win_order = order_sql.removeprefix(" ORDER BY ") or "1"
            outs = []
            for i, f in enumerate(columns):
                if not f.is_post_sql:
                    outs.append(f"c{inner.index(f)} AS o{i}")
                    continue
                b = f"c{inner.index(self.by_name[(f.measure_of or '')[2:-1]])}"
                if f.type == "running_total":
                    outs.append(
                        f"SUM({b}) OVER (ORDER BY {win_order} ROWS UNBOUNDED PRECEDING) AS o{i}"
                    )
                elif f.type == "percent_of_total":
                    outs.append(f"100.0 * {b} / NULLIF(SUM({b}) OVER (), 0) AS o{i}")
                else:
                    prev = f"LAG({b}) OVER (ORDER BY {win_order})"
                    outs.append(f"100.0 * ({b} - {prev}) / NULLIF({prev}, 0) AS o{i}")
            sql = f"SELECT {', '.join(outs)} FROM ({sql}){order_sql}"
        else:
            sql += order_sql
        if shape is not None:
            shape.limit = limit
            if not shape.pivots and limit is not None:  # one more row tells it was cut
                sql += f" LIMIT {int(limit) + 1}"
        elif limit is not None:
            sql += f" LIMIT {int(limit)}"
        if synthetic is not None:
            src, lo, hi, descending = synthetic
            sql = src.with_clause(lo, hi, descending=descending) + " " + sql
        return Compiled(
            self.model,
            self.explore,
            sql,
            params,
            columns,
            limit,
            self.ctx.timezone,
            filters,
            str(fexpr) if fexpr else None,
            synthetic,
            shape,
        )

    def _shape(self, columns: list[Field]) -> Shape | None:
        """Pivots and table calculations of the body, or None when it has neither."""
        body = self.body
        pivots: list[Field] = []
        for name in body.get("pivots") or []:
            f = self.by_name.get(name)
            if f is None or f not in columns or f.category != "dimension":
                raise ApiError(400, f"Invalid pivot: {name} (a pivot must be a selected dimension)")
            pivots.append(f)
        fields = body.get("fields") or []
        calcs = (
            [c for c in self.dynamic.calcs if c.name in fields] if self.server_table_calcs else []
        )
        if not pivots and not calcs:
            return None
        column_limit = body.get("column_limit")
        descending = {s.split()[0] for s in body.get("sorts") or [] if s.lower().endswith(" desc")}
        return Shape(
            pivots,
            calcs,
            None,
            int(column_limit) if column_limit not in (None, "") else None,
            descending & {p.name for p in pivots},
        )

    def _utc_intervals(self, f: Field, value: str) -> list[tuple[str | None, str | None]]:
        if f.filter_kind != "datetime":
            return [(None, None)]
        out: list[tuple[str | None, str | None]] = []
        for t in datetime_terms(value, self.tc.now_local()):
            if isinstance(t, str):
                return [(None, None)]
            lo, hi = t
            out.append(
                (
                    self.tc.to_utc_text(lo) if lo else None,
                    self.tc.to_utc_text(hi) if hi else None,
                )
            )
        return out

    def _order(self, columns: list[Field]) -> list[tuple[Field, bool]]:
        sorts = self.body.get("sorts")
        if sorts and "__UNSORTED__" in sorts:
            return []
        out: list[tuple[Field, bool]] = []
        for s in sorts or []:
            parts = s.split()
            if not parts:
                continue
            f = self.by_name.get(parts[0])
            if f is None or f not in columns:
                continue
            out.append((f, len(parts) > 1 and parts[1].lower() == "desc"))
        if out or sorts:
            return out
        # Looker's default sort: a time dimension desc, else the first measure desc, else the
        # first dimension asc.
        for f in columns:
            if f.category == "dimension" and f.timeframe and f.filter_kind == "datetime":
                return [(f, True)]
        for f in columns:
            if f.category == "measure":
                return [(f, True)]
        return [(columns[0], False)]

    def _synthetic_plan(
        self,
        order: list[tuple[Field, bool]],
        intervals: list[tuple[str | None, str | None]],
        fe_bounds: list[tuple[str, str, str]],
    ) -> tuple[tuple[Any, int, int, bool], list[tuple[Field, bool]]]:
        src = self.explore.source
        lo_ts: str | None = None
        hi_ts: str | None = None
        lo_strict = False
        if intervals and all(i != (None, None) for i in intervals):
            los = [i[0] for i in intervals]
            his = [i[1] for i in intervals]
            lo_ts = None if None in los else min(x for x in los if x)
            hi_ts = None if None in his else max(x for x in his if x)
        if self.ctx.timezone == "UTC":
            for name, op, stamp in fe_bounds:
                if name != "synthetic.created_time":
                    continue
                if op in (">", ">=") and (lo_ts is None or stamp >= lo_ts):
                    lo_ts, lo_strict = stamp, op == ">"
                if op in ("<", "<=") and (hi_ts is None or stamp <= hi_ts):
                    hi_ts = stamp if op == "<" else src.next_second(stamp)
        lo, hi = src.index_range(lo_ts, hi_ts, lo_strict=lo_strict)
        descending = False
        ordered_keys = {"synthetic.created_time", "synthetic.id", "synthetic.created_raw"}
        if order and all(f.name in ordered_keys for f, _ in order):
            dirs = {d for _, d in order}
            if len(dirs) == 1:
                descending = dirs.pop()
                order = []
        elif not order:
            order = []
        return (src, lo, hi, descending), order

    def _from_sql(self, synthetic: Any) -> str:
        base = self.explore.base
        from_sql = (
            f'{base.table} AS "{base.name}"'
            if synthetic is None
            else f'synthetic_rows AS "{base.name}"'
        )
        needed = set(self.views)
        changed = True
        while changed:
            changed = False
            for j in self.explore.joins:
                if j.view.name in needed:
                    deps = set(_ALIAS.findall(j.on)) - needed
                    if deps:
                        needed |= deps
                        changed = True
        for j in self.explore.joins:
            if j.view.name in needed:
                jt = "LEFT JOIN" if j.type == "left_outer" else "JOIN"
                from_sql += f' {jt} {j.view.table} AS "{j.view.name}" ON {j.on}'
        return from_sql


def compile_query(
    models: dict[str, Model],
    body: dict[str, Any],
    now: datetime,
    limit_override: Any = None,
    *,
    server_table_calcs: bool = False,
) -> Compiled:
    """Look up the model and explore (404 when absent) and compile ``body``."""
    model = models.get(body.get("model") or "")
    if model is None:
        raise ApiError(404, "Not found")
    explore = model.explores.get(body.get("view") or "")
    if explore is None:
        raise ApiError(404, "Not found")
    return Compiler(model, explore, body, now, server_table_calcs=server_table_calcs).compile(
        limit_override
    )
