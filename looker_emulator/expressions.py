"""A documented subset of Looker expressions, for custom dimensions and table calculations.

Looker's "Looker functions and operators" page defines the language; this module parses the
part the emulator supports into a small tree and gives it two meanings: SQL (custom dimensions,
computed by SQLite like LookML dimensions) and evaluation over result rows (table
calculations, computed after the query, per pivot column).

Supported: field references ``${view.field}`` / ``${custom_name}``, numbers, ``"strings"``,
``yes``/``no``/``null``, ``+ - * /``, ``= != <> < > <= >=``, ``AND OR NOT``, parentheses, and
the functions ``if(c, a, b)``, ``round(x[, digits])``, ``is_null(x)``, ``coalesce(a, b, ...)``,
``concat(a, ...)``, and over the whole column ``sum(x)``, ``mean(x)``, ``max(x)``, ``min(x)``,
``count(x)``. Anything else is a 400 ``Invalid expression`` (the README lists the subset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Functions over the whole column of a table calculation (one pivot column when pivoted).
COLUMN_FUNCTIONS = frozenset({"sum", "mean", "max", "min", "count"})
ROW_FUNCTIONS = frozenset({"if", "round", "is_null", "coalesce", "concat"})

_TOKEN = re.compile(
    r"\s*(?:(?P<ref>\$\{[A-Za-z0-9_.]+\})|(?P<num>\d+(?:\.\d+)?)|(?P<str>\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op><=|>=|!=|<>|[-+*/=<>(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


class ExpressionError(ValueError):
    """The expression is outside the supported subset, or malformed."""


@dataclass(frozen=True)
class Node:
    """One node: ``kind`` is ref, lit, op, not, neg or call; ``args`` its operands."""

    kind: str
    value: Any = None
    args: tuple[Node, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            msg = f"cannot read {text[pos : pos + 20]!r}"
            raise ExpressionError(msg)
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def word(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] in ("word", "op") and tok[1].upper() in words:
            self.i += 1
            return tok[1].upper()
        return None

    def expect(self, op: str) -> None:
        if self.word(op) is None:
            msg = f"expected {op!r}"
            raise ExpressionError(msg)

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            msg = f"unexpected {self.peek()[1]!r}"  # type: ignore[index]
            raise ExpressionError(msg)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.word("OR"):
            node = Node("op", "OR", (node, self.and_()))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.word("AND"):
            node = Node("op", "AND", (node, self.not_()))
        return node

    def not_(self) -> Node:
        if self.word("NOT"):
            return Node("not", None, (self.not_(),))
        return self.compare()

    def compare(self) -> Node:
        node = self.add()
        op = self.word("=", "!=", "<>", "<", ">", "<=", ">=")
        if op:
            node = Node("op", "!=" if op == "<>" else op, (node, self.add()))
        return node

    def add(self) -> Node:
        node = self.mul()
        while op := self.word("+", "-"):
            node = Node("op", op, (node, self.mul()))
        return node

    def mul(self) -> Node:
        node = self.unary()
        while op := self.word("*", "/"):
            node = Node("op", op, (node, self.unary()))
        return node

    def unary(self) -> Node:
        if self.word("-"):
            return Node("neg", None, (self.unary(),))
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            msg = "the expression ended early"
            raise ExpressionError(msg)
        kind, text = tok
        self.i += 1
        if kind == "ref":
            return Node("ref", text[2:-1])
        if kind == "num":
            return Node("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return Node("lit", text[1:-1].replace('\\"', '"'))
        if kind == "op" and text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "word":
            low = text.lower()
            if low in ("yes", "no", "null"):
                return Node("lit", {"yes": True, "no": False, "null": None}[low])
            if low in COLUMN_FUNCTIONS | ROW_FUNCTIONS:
                self.expect("(")
                args = [self.or_()]
                while self.word(","):
                    args.append(self.or_())
                self.expect(")")
                return Node("call", low, tuple(args))
        msg = f"unsupported {text!r}"
        raise ExpressionError(msg)


def parse(text: str) -> Node:
    """The tree of an expression.

    Raises:
        ExpressionError: outside the subset, or malformed.
    """
    return _Parser(text).parse()


def references(node: Node) -> set[str]:
    """The field names an expression refers to."""
    found = {node.value} if node.kind == "ref" else set()
    for arg in node.args:
        found |= references(arg)
    return found


# ------------------------------------------------------------------ SQL (custom dimensions)

_SQL_OPS = {"OR": "OR", "AND": "AND", "=": "=", "!=": "<>", "<": "<", ">": ">", "<=": "<="}


def to_sql(node: Node, ref: Callable[[str], str]) -> str:
    """SQLite SQL of a row-level expression (no column functions), literals inlined and quoted.

    ``ref(name)`` is the SQL of a referenced field.
    """

    def go(n: Node) -> str:  # noqa: PLR0911 - one return per node kind
        if n.kind == "ref":
            return f"({ref(n.value)})"
        if n.kind == "lit":
            if isinstance(n.value, bool):
                return "1" if n.value else "0"
            if n.value is None:
                return "NULL"
            if isinstance(n.value, str):
                return "'" + n.value.replace("'", "''") + "'"
            return repr(n.value)
        if n.kind == "neg":
            return f"(-{go(n.args[0])})"
        if n.kind == "not":
            return f"(NOT {go(n.args[0])})"
        if n.kind == "op":
            a, b = (go(x) for x in n.args)
            if n.value == "/":
                return f"(1.0 * {a} / NULLIF({b}, 0))"
            return f"({a} {_SQL_OPS.get(n.value, n.value)} {b})"
        args = [go(x) for x in n.args]
        if n.value == "if":
            return f"(CASE WHEN {args[0]} THEN {args[1]} ELSE {args[2]} END)"
        if n.value == "round":
            return f"ROUND({args[0]}, {args[1] if len(args) > 1 else 0})"
        if n.value == "is_null":
            return f"({args[0]} IS NULL)"
        if n.value == "coalesce":
            return f"COALESCE({', '.join(args)})"
        if n.value == "concat":
            return "(" + " || ".join(f"COALESCE({a}, '')" for a in args) + ")"
        msg = f"{n.value}() works over a column: it is for table calculations only"
        raise ExpressionError(msg)

    return go(node)


# ------------------------------------------------------------------ evaluation (table calcs)


def _truth(value: Any) -> bool:
    return value is True or value == "Yes" or (isinstance(value, (int, float)) and value != 0)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, bool) or isinstance(b, bool) or a in ("Yes", "No") or b in ("Yes", "No"):
        a, b = _truth(a), _truth(b)
    result: bool
    if op == "=":
        result = a == b
    elif op == "!=":
        result = a != b
    elif op == "<":
        result = a < b
    elif op == ">":
        result = a > b
    elif op == "<=":
        result = a <= b
    else:
        result = a >= b
    return result


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _number(a), _number(b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def evaluate(
    node: Node,
    row: dict[str, Any],
    column: Callable[[Node], Sequence[Any]],
) -> Any:
    """The value of an expression for one row; ``column(n)`` gives ``n``'s value in every row."""

    def go(n: Node) -> Any:  # noqa: PLR0911 - one return per node kind
        if n.kind == "ref":
            return row.get(n.value)
        if n.kind == "lit":
            return n.value
        if n.kind == "neg":
            v = go(n.args[0])
            return None if v is None else -_number(v)
        if n.kind == "not":
            v = go(n.args[0])
            return None if v is None else not _truth(v)
        if n.kind == "op":
            if n.value in ("AND", "OR"):
                a, b = _truth(go(n.args[0])), _truth(go(n.args[1]))
                return (a and b) if n.value == "AND" else (a or b)
            a, b = go(n.args[0]), go(n.args[1])
            if n.value in ("+", "-", "*", "/"):
                return _arith(n.value, a, b)
            return _compare(n.value, a, b)
        name = n.value
        if name in COLUMN_FUNCTIONS:
            values = [_number(v) for v in column(n.args[0]) if v is not None]
            if name == "count":
                return len(values)
            if not values:
                return None
            if name == "sum":
                return sum(values)
            if name == "mean":
                return sum(values) / len(values)
            return max(values) if name == "max" else min(values)
        if name == "if":
            return go(n.args[1]) if _truth(go(n.args[0])) else go(n.args[2])
        if name == "round":
            v = go(n.args[0])
            digits = int(go(n.args[1])) if len(n.args) > 1 else 0
            return None if v is None else round(_number(v), digits)
        if name == "is_null":
            return go(n.args[0]) is None
        if name == "coalesce":
            return next((v for v in (go(a) for a in n.args) if v is not None), None)
        return "".join("" if v is None else str(v) for v in (go(a) for a in n.args))

    return go(node)
