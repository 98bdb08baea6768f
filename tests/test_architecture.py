"""The layout's rules, checked on the source: imports go one way, and no module is part of an import cycle.

    memoryplatform (settings, urls, wsgi)  ->  calls  ->  memories  ->  embeddings  ->  core

Every import counts, at module level or inside a function, so a function-level import cannot hide a cycle.
Dynamic imports by name (settings' dotted paths, core's discovery of `<app>.tasks` and `<app>.metrics`) are
not edges: nothing at import time depends on them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "embeddings", "memories", "calls", "memoryplatform", "testkit", "bench", "tests")
# What each package must never import (directly or from a module inside it).
FORBIDDEN = {
    "core": {"embeddings", "memories", "calls", "memoryplatform"},
    "embeddings": {"memories", "calls", "memoryplatform"},
    "memories": {"calls", "memoryplatform"},
    "calls": {"memoryplatform"},
    "testkit": {"tests"},
    "bench": {"tests"},
}
APP_PACKAGES = ("core", "embeddings", "memories", "calls", "memoryplatform")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if ".venv" not in path.parts:
                modules[module_name(path)] = path
    return modules


MODULES = project_modules()


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """The project modules that `source` (the text of `module`) imports, anywhere in the file."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found - {module}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a module importing itself)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index_of[node] = low[node] = len(index_of)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index_of:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index_of[target])
        if low[node] == index_of[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index_of:
            visit(node)
    return cycles


GRAPH = {
    name: imported_modules(path.read_text(), name, is_package=path.name == "__init__.py")
    for name, path in MODULES.items()
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    offending = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] in FORBIDDEN[package]
    )
    assert offending == []


def test_only_the_tests_import_the_tests():
    offending = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] != "tests"
        for target in targets
        if target.split(".")[0] == "tests"
    )
    assert offending == []


def test_no_import_cycles():
    application = {name: targets for name, targets in GRAPH.items() if name.split(".")[0] in APP_PACKAGES}
    assert find_cycles(application) == []


def test_the_checker_sees_function_level_imports_and_cycles():
    """The rules above cannot pass vacuously."""
    source = "import json\n\ndef later():\n    from calls import webhooks\n    from . import tasks\n"
    assert imported_modules(source, "calls.payloads") == {"calls", "calls.webhooks", "calls.tasks"}
    assert "calls.tasks" in GRAPH["calls.webhooks"] and "calls.payloads" in GRAPH["calls.webhooks"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
