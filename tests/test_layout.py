"""The package's shape: imports point one way (docs/design.md's layers), no cycle, small modules and functions.

Read from the source with ``ast``: every ``import`` counts, at module level or inside a
function, except those under ``if TYPE_CHECKING:`` for the cycle check (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "markit"

# Each layer and the layers it may import (itself included). Lower layers never import higher ones;
# the write side and the read side never import each other; the CLI imports only the public API.
LAYERS = {
    "base": {"base"},  # markit.errors, markit.version
    "model": {"base", "model"},
    "weights": {"base", "model", "weights"},  # what weight files say (pickle imports, safetensors headers): pure
    "engine": {"base", "engine"},
    "storage": {"base", "engine", "storage"},
    "formats": {"base", "model", "engine", "storage", "formats"},
    "write": {"base", "model", "engine", "storage", "formats", "write"},
    "read": {"base", "model", "weights", "engine", "storage", "formats", "read"},
    "trust": {"base", "model", "weights", "engine", "storage", "formats", "read", "trust"},  # signatures
    "api": {"base", "model", "weights", "engine", "storage", "formats", "write", "read", "trust", "api"},
    "cli": {"package", "cli"},
    "main": {"cli"},
}
MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 55  # "about 50": a typer command's option list may take a few more


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if module == "markit":
        return "package"
    if module in ("markit.errors", "markit.version"):
        return "base"
    if module == "markit.api":
        return "api"
    if module == "markit.__main__":
        return "main"
    return parts[1]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, *, at_run_time: bool) -> set[str]:
    """The markit modules *path* imports (a ``from markit.x import y`` names ``markit.x``, or ``markit.x.y``
    when that is a module)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if at_run_time:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(inner) for inner in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "markit")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "markit":
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                found.add(inner if inner in MODULES else node.module)
    return found


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) != "package"))
def test_imports_point_down(module: str) -> None:
    allowed = LAYERS[layer(module)]
    wrong = sorted(i for i in imports(MODULES[module], at_run_time=False) if layer(i) not in allowed)
    assert not wrong, f"{module} ({layer(module)}) imports {wrong}; it may import only {sorted(allowed)}"


def test_the_package_itself_imports_only_errors_and_version() -> None:
    assert imports(MODULES["markit"], at_run_time=True) <= {"markit.errors", "markit.version"}


def test_no_import_cycle() -> None:
    graph = {m: imports(p, at_run_time=True) - {m} for m, p in MODULES.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for inner in sorted(graph.get(module, ())):
            if state.get(inner) == "open":
                cycle = [*trail[trail.index(inner):], inner] if inner in trail else [module, inner]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if inner not in state:
                visit(inner, [*trail, inner])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_a_cycle_and_a_wrong_import(tmp_path: Path) -> None:
    """The checks above can fail: a read module importing the write side is caught, and so is a cycle."""
    bad = tmp_path / "bad.py"
    bad.write_text("from markit.write.plan import Plan\nfrom markit.formats.base import Member\n")
    assert imports(bad, at_run_time=True) == {"markit.write.plan", "markit.formats.base"}
    assert layer("markit.write.plan") not in LAYERS["read"]
    guarded = tmp_path / "guarded.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from markit.api import create\n")
    assert imports(guarded, at_run_time=True) == set()
    assert imports(guarded, at_run_time=False) == {"markit.api"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small(module: str) -> None:
    text = MODULES[module].read_text()
    assert len(text.splitlines()) <= MODULE_LINES_MAX, f"{module}: over {MODULE_LINES_MAX} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > FUNCTION_LINES_MAX]  # type: ignore[operator]
    assert not long, f"{module}: {long}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_what_it_holds(module: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert doc and doc.strip(), f"{module} has no docstring"
