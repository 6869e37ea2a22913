"""The house: core/ holds stage packages whose imports point one way, and no module circle.

Reads every module's imports (top level and inside functions) with `ast`, so a lazy import that
hides a circle is caught too. The allowed table is the one docs/ARCHITECTURE.md draws.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"

SHARED = {"errors", "types", "wording"}
"""Modules every stage may import (wording: counts in sentences, used by detect, learn and the CLI)."""
ALLOWED = {
    "store": set(),
    "ingest": {"store"},
    "detect": {"store"},
    "explain": {"learn", "detect", "store"},
    "labels": {"detect", "store"},
    "learn": {"labels", "detect", "ingest", "store"},
    "synth": {"labels", "detect", "store"},
    "charts": {"learn", "labels", "explain", "detect", "store"},
    "share": {"charts", "synth", "learn", "labels", "explain", "detect", "store"},
    "cli": {"share", "synth", "learn", "labels", "explain", "detect", "ingest", "store"},
    "__main__": {"cli"},
}
"""Package -> the stages it may import (besides itself and the shared modules)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The core modules a file imports, resolved to module names (``from core.x import y`` is
    ``core.x.y`` when y is a module, else ``core.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("core")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _is_module(candidate) else node.module)
    return found


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = {_module_name(p): _imports(p) for p in CORE.rglob("*.py")}


def test_core_top_level_holds_only_shared_modules_and_stage_packages():
    top = {p.name for p in CORE.iterdir() if not p.name.startswith((".", "__pycache__"))}
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ALLOWED) - {"cli", "__main__"}
    modules = {n.removesuffix(".py") for n in top if n.endswith(".py")}
    assert modules == SHARED | {"cli", "__main__", "__init__"}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_from_later_stages_to_earlier_ones(module):
    stage = _stage(module)
    if stage in SHARED or stage == "":
        assert all(_stage(m) in SHARED for m in GRAPH[module]), GRAPH[module]
        return
    bad = {
        m
        for m in GRAPH[module]
        if _stage(m) not in SHARED | {stage, ""} and _stage(m) not in ALLOWED[stage]
    }
    assert not bad, f"{module} ({stage}) may not import {sorted(bad)}"


def test_no_import_circle_between_modules():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(GRAPH.get(node, ())):
            if dep == node or dep not in GRAPH or dep == "core":
                continue
            if state.get(dep) == 1:
                circle = path[path.index(dep) :] + [dep]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_every_module_imports_on_its_own():
    names = [m.name for m in pkgutil.walk_packages(core.__path__, "core.")]
    assert len(names) > 40
    for name in names:
        if not name.endswith("__main__"):
            importlib.import_module(name)


def test_the_circle_check_can_fail():
    """The check above would see a circle (so it is not vacuous)."""
    GRAPH["core.ingest.files"].add("core.ingest.roles")
    try:
        with pytest.raises(AssertionError, match="import circle"):
            test_no_import_circle_between_modules()
    finally:
        GRAPH["core.ingest.files"].discard("core.ingest.roles")


def test_architecture_doc_draws_the_same_table():
    """docs/ARCHITECTURE.md is what a newcomer reads: its table must be the one enforced here."""
    drawn: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`") or "errors.py" in cells[0]:
            continue
        package = cells[0].strip("`").removesuffix("/").removesuffix(".py")
        allowed = set() if cells[2] == "nothing" else {w.strip("` ") for w in cells[2].split(",")}
        drawn[package] = allowed
    enforced = {k: v for k, v in ALLOWED.items() if k != "__main__"}
    enforced["cli"] = {"every stage"}
    assert drawn == enforced
