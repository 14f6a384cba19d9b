"""The layout keeps the way a call travels visible: these import rules hold for every module.

Imports are read from the source (every ``import`` statement, also those inside functions), so a
lazy import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "connector"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m == "connector" or m.startswith("connector.")}
    modules = set(graph)
    # "from connector.x import name" names a module only when that module exists.
    return {name: {m for m in deps if m in modules} - {name} for name, deps in graph.items()}


GRAPH = _imports()


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def _arrows(source: str, target: str) -> list[str]:
    return sorted(
        f"{m} -> {d}" for m, deps in GRAPH.items() if _in(source, m) for d in deps if _in(target, d)
    )


def test_the_graph_was_read() -> None:
    assert "connector.web.app" in GRAPH
    assert "connector.ledger.ledger" in GRAPH["connector.web.app"]
    assert _arrows("connector.config.load", "connector.adapters")  # a known, allowed arrow


def test_no_import_circle() -> None:
    # Package __init__ modules that re-export are edges too: a circle through them breaks imports.
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert circles == []


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("connector.web", "connector.delivery"),
        ("connector.web", "connector.services"),
        ("connector.web", "connector.adapters"),
        ("connector.delivery", "connector.web"),
        ("connector.ledger", "connector.web"),
        ("connector.ledger", "connector.delivery"),
        ("connector.ledger", "connector.adapters"),
        ("connector.adapters", "connector.config.load"),
        ("connector.adapters", "connector.web"),
        ("connector.adapters", "connector.delivery"),
        ("connector.adapters", "connector.ledger"),
        ("connector.adapters", "connector.services"),
        ("connector.config.sections", "connector.adapters"),
        ("connector.config.policy", "connector.adapters"),
        ("connector.config", "connector.web"),
        ("connector.config", "connector.delivery"),
        ("connector.render", "connector.adapters"),
        ("connector.payload", "connector.adapters"),
        ("connector.report", "connector.payload"),
        ("connector.vcon", "connector.adapters"),
        ("connector.vcon", "connector.config"),
        ("connector.vcon", "connector.web"),
        ("connector.vcon", "connector.delivery"),
    ],
)
def test_no_arrow_against_the_flow(source: str, forbidden: str) -> None:
    assert _arrows(source, forbidden) == []


def test_only_the_composition_root_imports_services() -> None:
    users = {m for m, deps in GRAPH.items() if "connector.services" in deps}
    assert users <= {"connector.cli"}
