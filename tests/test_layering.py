"""The genotype is the contract: strategies never import tasks, tasks never import strategies."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the entry points that look tasks up by name in the TASKS registry
ALLOWED_TASK_IMPORTERS = {"zoo/pipeline.py", "zoo/finetune.py", "zoo/__main__.py"}


def imported_modules(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def _files(sub: str) -> list[Path]:
    return sorted((ROOT / sub).rglob("*.py"))


def test_strategies_do_not_import_tasks() -> None:
    for f in _files("zoo/search"):
        bad = {m for m in imported_modules(f) if m == "tasks" or m.startswith("tasks.")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_tasks_do_not_import_strategies() -> None:
    for f in _files("tasks"):
        bad = {m for m in imported_modules(f) if m == "zoo.search" or m.startswith("zoo.search.")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_library_layers_do_not_import_tasks() -> None:
    for f in _files("zoo"):
        rel = str(f.relative_to(ROOT))
        if rel in ALLOWED_TASK_IMPORTERS:
            continue
        bad = {m for m in imported_modules(f) if m == "tasks" or m.startswith("tasks.")}
        assert not bad, f"{rel} imports {bad}"
