"""The package's layout rules: imports flow one way, and the engine knows nothing of Singer."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "tap_looker_query"


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports (TYPE_CHECKING ones included), by full name."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        graph[_module(path)] = names
    return graph


def test_no_import_cycle_even_under_type_checking():
    imports = _imports()
    graph = {
        module: {name for name in names if name in imports} for module, names in imports.items()
    }
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            assert state.get(target) != "open", " -> ".join([*trail, module, target])
            if target not in state:
                visit(target, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_engine_and_looker_import_nothing_from_the_singer_sdk():
    for module, names in _imports().items():
        if module.startswith(("tap_looker_query.engine", "tap_looker_query.looker")):
            assert not [name for name in names if name.startswith("singer_sdk")], module


def test_only_the_entry_point_imports_the_sdk_adapters():
    for module, names in _imports().items():
        if module in {"tap_looker_query.__main__", "tap_looker_query.tap"}:
            continue
        assert "tap_looker_query.tap" not in names, module
        assert "tap_looker_query.stream" not in names, module
