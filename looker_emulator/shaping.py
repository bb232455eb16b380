"""What Looker computes around a query's SQL: custom fields, table calculations and pivots.

``dynamic_fields`` (the JSON string a saved query stores, or a list) become fields of the
query: a custom measure (``measure`` + ``based_on`` + ``type``) aggregates a dimension like a
LookML measure; a custom dimension (``dimension`` + ``expression``) is an expression compiled to
SQL. Table calculations (``table_calculation`` + ``expression``) are evaluated over the result
rows after the query, per pivot column when the query pivots, and only when the run asks for
``server_table_calcs`` (without it Looker leaves them to the browser). ``is_disabled`` items are
left out of the results.

A pivoted query is run unpivoted (every dimension grouped) and folded here: one table row per
distinct value of the other dimensions, one column per pivot value, the row ``limit`` counting
table rows and ``column_limit`` pivot columns. Such results are materialised (keep them small).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from looker_emulator.expressions import ExpressionError, Node, evaluate, parse, to_sql
from looker_emulator.lookml import Field

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from looker_emulator.engine import Compiled

#: Custom measure types the emulator aggregates (Looker offers these in the Explore UI).
CUSTOM_MEASURE_TYPES = ("count", "count_distinct", "sum", "average", "min", "max", "list")
#: The key Looker's pivoted json_detail uses for a NULL pivot value (a guess: the UI shows ∅).
NULL_KEY = "∅"
PIVOT_SEPARATOR = "|FIELD|"


class DynamicFieldError(ValueError):
    """A ``dynamic_fields`` item the emulator cannot use (answered as a 400)."""


@dataclass
class DynamicField(Field):
    """A custom dimension or measure: a field with a bare name (no view prefix)."""

    bare: str = ""
    label_text: str = ""

    @property
    def name(self) -> str:
        """The custom field's own name, as Looker keys its values."""
        return self.bare

    @property
    def label(self) -> str:
        """The label the user gave it."""
        return self.label_text or self.bare

    def metadata(self) -> dict[str, Any]:
        """Field metadata as Looker lists it in a result: ``dynamic`` set."""
        md = super().metadata()
        md.update(
            name=self.bare,
            label=self.label,
            label_short=self.label,
            view_label="Custom Fields",
            dynamic=True,
            scope=self.view,
            sql=None,
            suggest_dimension=None,
        )
        return md


@dataclass(frozen=True)
class TableCalc:
    """A table calculation of the query."""

    name: str
    label: str
    expression: str
    node: Node
    type_hint: str

    def metadata(self) -> dict[str, Any]:
        """How a result's ``fields.table_calculations`` describes it."""
        numeric = self.type_hint == "number"
        return {
            "name": self.name,
            "label": self.label,
            "label_short": self.label,
            "expression": self.expression,
            "type": self.type_hint,
            "category": "table_calculation",
            "is_numeric": numeric,
            "measure": True,
            "dimension": False,
            "is_table_calculation": True,
            "dynamic": True,
            "can_pivot": True,
            "sortable": True,
            "align": "right" if numeric else "left",
            "value_format": None,
            "value_format_name": None,
        }


def parse_dynamic_fields(raw: Any) -> list[dict[str, Any]]:
    """The items of ``dynamic_fields``: a JSON string (as Looker stores it) or a list."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            msg = f"dynamic_fields is not JSON: {exc}"
            raise DynamicFieldError(msg) from exc
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        msg = "dynamic_fields must be a list of objects"
        raise DynamicFieldError(msg)
    return raw


@dataclass
class DynamicFields:
    """The custom fields and table calculations of one query body."""

    fields: dict[str, Field] = field(default_factory=dict)
    calcs: list[TableCalc] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)


def dynamic_fields(
    raw: Any,
    by_name: dict[str, Field],
    base_view: str,
    dim_sql: Callable[[Field], str],
) -> DynamicFields:
    """Custom fields (added to ``by_name``) and table calculations of ``raw``.

    Raises:
        DynamicFieldError: an item is malformed or outside what the emulator supports.
    """
    out = DynamicFields()
    for item in parse_dynamic_fields(raw):
        kind = next(
            k for k in ("table_calculation", "measure", "dimension", "") if k in item or not k
        )
        name = item.get(kind) if kind else None
        if not isinstance(name, str) or not name:
            msg = f"dynamic_fields item without a table_calculation/measure/dimension name: {item}"
            raise DynamicFieldError(msg)
        if item.get("is_disabled"):
            out.disabled.add(name)
            continue
        label = str(item.get("label") or name)
        hint = str(item.get("_type_hint") or "")
        try:
            if kind == "table_calculation":
                node = parse(str(item.get("expression") or ""))
                out.calcs.append(
                    TableCalc(name, label, str(item["expression"]), node, hint or _inferred(node))
                )
                continue
            if kind == "measure":
                made = _custom_measure(item, name, label, by_name)
            else:
                made = _custom_dimension(
                    item, name, label, hint, by_name=by_name, base_view=base_view, dim_sql=dim_sql
                )
        except ExpressionError as exc:
            msg = f"Invalid expression for {name}: {exc}"
            raise DynamicFieldError(msg) from exc
        by_name[name] = made
        out.fields[name] = made
    return out


def _inferred(node: Node) -> str:
    """The type of a calculation saved without `_type_hint` (a guess: Looker infers one)."""
    if node.kind == "not" or (node.kind == "op" and node.value not in ("+", "-", "*", "/")):
        return "yesno"
    if node.kind == "call" and node.value == "is_null":
        return "yesno"
    if (node.kind == "lit" and isinstance(node.value, str)) or (
        node.kind == "call" and node.value == "concat"
    ):
        return "string"
    if node.kind == "call" and node.value in ("if", "coalesce"):
        return _inferred(node.args[1] if node.value == "if" else node.args[0])
    return "number"


def _custom_measure(
    item: dict[str, Any], name: str, label: str, by_name: dict[str, Field]
) -> DynamicField:
    based_on = by_name.get(str(item.get("based_on") or ""))
    measure_type = str(item.get("type") or "")
    if based_on is None or based_on.category != "dimension":
        msg = f"custom measure {name}: based_on must name a dimension of the explore"
        raise DynamicFieldError(msg)
    if measure_type not in CUSTOM_MEASURE_TYPES:
        msg = f"custom measure {name}: type {measure_type!r} is not emulated"
        raise DynamicFieldError(msg)
    if item.get("filters") or item.get("expression"):
        msg = (
            f"custom measure {name}: filtered or expression-based custom measures are not emulated"
        )
        raise DynamicFieldError(msg)
    numeric = measure_type in ("count", "count_distinct", "sum", "average") or (
        measure_type in ("min", "max") and based_on.is_numeric
    )
    return DynamicField(
        based_on.view,
        name,
        "measure",
        measure_type,
        measure_of=f"${{{based_on.name}}}",
        is_numeric=numeric,
        filter_kind="number" if numeric else "string",
        bare=name,
        label_text=label,
    )


def _custom_dimension(
    item: dict[str, Any],
    name: str,
    label: str,
    hint: str,
    *,
    by_name: dict[str, Field],
    base_view: str,
    dim_sql: Callable[[Field], str],
) -> DynamicField:
    def ref(field_name: str) -> str:
        f = by_name.get(field_name)
        if f is None or f.category != "dimension":
            msg = f"custom dimension {name}: {field_name} is not a dimension"
            raise DynamicFieldError(msg)
        sql = dim_sql(f)
        return f"({sql}) = 'Yes'" if f.type == "yesno" else sql

    sql = to_sql(parse(str(item.get("expression") or "")), ref)
    looker_type = hint or "string"
    if looker_type == "yesno":
        sql = f"CASE WHEN {sql} THEN 'Yes' ELSE 'No' END"
    return DynamicField(
        base_view,
        name,
        "dimension",
        looker_type,
        sql,
        is_numeric=looker_type == "number",
        filter_kind={"number": "number", "yesno": "yesno"}.get(looker_type, "string"),
        bare=name,
        label_text=label,
    )


# ------------------------------------------------------------------ the shaped table


@dataclass
class Shape:
    """What is applied after the SQL: pivots, table calculations, the table's limits."""

    pivots: list[Field]
    calcs: list[TableCalc]
    limit: int | None
    column_limit: int | None
    descending_pivots: set[str] = field(default_factory=set)


@dataclass
class Table:
    """Looker's (pivoted) table: rows of dimension values and cells per pivot key."""

    dims: list[Field]
    values: list[Field]  # measures, then table calculations (as Fields for their names)
    calcs: list[TableCalc]
    pivots: list[Field]
    keys: list[tuple[Any, ...]]
    rows: list[dict[str, Any]]
    cells: list[dict[tuple[Any, ...], dict[str, Any]]]
    truncated: bool
    columns_truncated: bool

    def key_text(self, key: tuple[Any, ...]) -> str:
        """Looker's pivot key: the values joined by ``|FIELD|``."""
        return PIVOT_SEPARATOR.join(NULL_KEY if v is None else str(v) for v in key)


def _sort_key(value: Any) -> tuple[int, Any]:
    # NULLs sort low, as the SQL engine sorts them.
    return (0, "") if value is None else (1, value)


def _position(i: int) -> Callable[[tuple[Any, ...]], tuple[int, Any]]:
    return lambda key: _sort_key(key[i])


def build_table(c: Compiled, rows: Iterable[tuple[Any, ...]]) -> Table:
    """Fold the query's unpivoted rows into Looker's table, then add the table calculations."""
    shape = c.shape
    assert shape is not None  # render() is only called for shaped results
    names = [f.name for f in c.columns]
    pivot_names = [f.name for f in shape.pivots]
    dims = [f for f in c.columns if f.category == "dimension" and f.name not in pivot_names]
    measures = [f for f in c.columns if f.category == "measure"]
    records = [dict(zip(names, r, strict=True)) for r in rows]
    keys: list[tuple[Any, ...]] = list(
        {tuple(r[p] for p in pivot_names) for r in records} if pivot_names else {()}
    )
    # Pivot columns ascend by value, or descend where the sorts say so (stable, last first).
    for i, p in reversed(list(enumerate(pivot_names))):
        keys.sort(key=_position(i), reverse=p in shape.descending_pivots)
    columns_truncated = shape.column_limit is not None and len(keys) > shape.column_limit
    if columns_truncated:
        keys = keys[: shape.column_limit]
    kept = set(keys)
    table_rows: list[dict[str, Any]] = []
    cells: list[dict[tuple[Any, ...], dict[str, Any]]] = []
    index: dict[tuple[Any, ...], int] = {}
    for i, r in enumerate(records):
        row_key = tuple(r[d.name] for d in dims) if pivot_names else (i,)
        pivot_key = tuple(r[p] for p in pivot_names)
        if pivot_key not in kept:
            continue
        at = index.get(row_key)
        if at is None:
            at = index[row_key] = len(table_rows)
            table_rows.append({d.name: r[d.name] for d in dims})
            cells.append({})
        cells[at][pivot_key] = {m.name: r[m.name] for m in measures}
    truncated = shape.limit is not None and len(table_rows) > shape.limit
    if truncated:
        table_rows, cells = table_rows[: shape.limit], cells[: shape.limit]
    empty = {m.name: None for m in measures}
    for row_cells in cells:
        for key in keys:
            row_cells.setdefault(key, dict(empty))
    _add_calcs(shape, keys, table_rows, cells)
    calc_fields: list[Field] = [
        DynamicField(
            "",
            calc.name,
            "table_calculation",
            calc.type_hint,
            bare=calc.name,
            label_text=calc.label,
        )
        for calc in shape.calcs
    ]
    return Table(
        dims,
        measures + calc_fields,
        shape.calcs,
        shape.pivots,
        keys,
        table_rows,
        cells,
        truncated,
        columns_truncated,
    )


def _add_calcs(
    shape: Shape,
    keys: list[tuple[Any, ...]],
    rows: list[dict[str, Any]],
    cells: list[dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    """Each calculation per pivot column, in order (a calculation may use an earlier one)."""
    pivot_names = [p.name for p in shape.pivots]
    for key in keys:
        contexts = [
            {**row, **dict(zip(pivot_names, key, strict=True)), **row_cells[key]}
            for row, row_cells in zip(rows, cells, strict=True)
        ]
        for calc in shape.calcs:

            def column(node: Node, contexts: list[dict[str, Any]] = contexts) -> list[Any]:
                return [evaluate(node, ctx, column) for ctx in contexts]

            for ctx, row_cells in zip(contexts, cells, strict=True):
                value = evaluate(calc.node, ctx, column)
                if calc.type_hint == "yesno" and value is not None:
                    value = "Yes" if value is True or value == "Yes" else "No"
                ctx[calc.name] = value
                row_cells[key][calc.name] = value


# ------------------------------------------------------------------ rendering


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _value_names(t: Table) -> list[str]:
    return [v.name for v in t.values]


def _json(t: Table) -> Iterator[bytes]:
    """``json``: flat rows; pivoted values nest ``value -> pivot field -> pivot value``."""
    pivot_field = PIVOT_SEPARATOR.join(p.name for p in t.pivots)
    yield b"["
    for i, (row, row_cells) in enumerate(zip(t.rows, t.cells, strict=True)):
        out = dict(row)
        for name in _value_names(t):
            if t.pivots:
                out[name] = {pivot_field: {t.key_text(k): row_cells[k][name] for k in t.keys}}
            else:
                out[name] = row_cells[()][name]
        yield (b"," if i else b"") + _dumps(out)
    yield b"]"


def detail_head(
    c: Compiled, fields: dict[str, Any], pivots: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A `json_detail` result's keys other than `data` (`extra`: `truncated`, ...)."""
    return {
        "id": uuid.uuid4().hex,
        "from_cache": c.from_cache,
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runtime": "0.001",
        "sql": c.sql,
        "null_sort_treatment": "low",
        "expired": False,
        "fields": fields,
        "pivots": pivots,
        "fill_fields": [],
        "has_totals": False,
        "has_row_totals": False,
        **extra,
        "applied_filters": {k: {"value": v} for k, v in c.filters.items()},
        "applied_filter_expression": c.filter_expression,
        "number_format": "1,234.56",
        "explore": {
            "name": c.explore.name,
            "label": c.explore.label,
            "description": c.explore.description,
        },
        "timezone": c.timezone,
    }


def _json_detail(c: Compiled, t: Table) -> Iterator[bytes]:
    pivots = (
        [
            {
                "key": t.key_text(k),
                "data": {p.name: v for p, v in zip(t.pivots, k, strict=True)},
                "sort_values": {p.name: v for p, v in zip(t.pivots, k, strict=True)},
                "labels": {
                    p.name: "∅" if v is None else str(v) for p, v in zip(t.pivots, k, strict=True)
                },
                "is_total": False,
                "metadata": {p.name: {"value": v} for p, v in zip(t.pivots, k, strict=True)},
            }
            for k in t.keys
        ]
        if t.pivots
        else []
    )
    head = detail_head(
        c,
        {
            "dimensions": [f.metadata() for f in t.dims],
            "measures": [f.metadata() for f in t.values if f.category == "measure"],
            "table_calculations": [calc.metadata() for calc in t.calcs],
            "pivots": [f.metadata() for f in t.pivots],
        },
        pivots,
        truncated=t.truncated,
        columns_truncated=t.columns_truncated,
    )
    yield _dumps(head)[:-1] + b',"data":['
    for i, (row, row_cells) in enumerate(zip(t.rows, t.cells, strict=True)):
        out: dict[str, Any] = {name: {"value": v} for name, v in row.items()}
        for name in _value_names(t):
            if t.pivots:
                out[name] = {t.key_text(k): {"value": row_cells[k][name]} for k in t.keys}
            else:
                out[name] = {"value": row_cells[()][name]}
        yield (b"," if i else b"") + _dumps(out)
    yield b"]}"


def _csv(t: Table) -> Iterator[bytes]:
    """``csv``: one header line per pivot field (its values over the columns), then labels."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    labels = [v.label for v in t.values]
    dims = [d.label for d in t.dims]
    if t.pivots:
        for i, p in enumerate(t.pivots):
            lead = [""] * max(len(dims) - 1, 0) + [p.label]
            w.writerow(lead + [NULL_KEY if k[i] is None else k[i] for k in t.keys for _ in labels])
        w.writerow(dims + labels * len(t.keys))
    else:
        w.writerow(dims + labels)
    for row, row_cells in zip(t.rows, t.cells, strict=True):
        values = [row[d.name] for d in t.dims]
        values += [row_cells[k][name] for k in t.keys for name in _value_names(t)]
        w.writerow(["" if v is None else v for v in values])
    yield out.getvalue().encode()


#: The formats a pivoted or table-calculated result is emulated in.
SHAPED_FORMATS = ("json", "json_detail", "csv")


def render(fmt: str, c: Compiled, rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    """The body of a shaped result (pivots or table calculations) in ``fmt``."""
    t = build_table(c, rows)
    if fmt == "json":
        yield from _json(t)
    elif fmt == "json_detail":
        yield from _json_detail(c, t)
    else:
        yield from _csv(t)
