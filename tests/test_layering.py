"""The genotype is the contract, and the core names no task: architecture checked over the AST.

* strategies never import tasks; tasks never import strategies;
* nothing in ``zoo/`` imports the task packages (:mod:`zoo.plugins` loads them by name from the
  registries), and no code in ``zoo/`` names a task (docstrings and comments aside);
* the import graph of ``zoo/`` (imports inside functions included) has no circle;
* in tests/, no module imports a test module (what tests share is in tests/helpers/), and only
  tests/helpers/cli.py spells out a ``python -m zoo`` command.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK_NAMES = sorted(p.name for p in (ROOT / "tasks").iterdir() if (p / "__init__.py").is_file())
# names the next tasks will take (their issues are open): the core must not name them either
TASK_NAMES = sorted({*TASK_NAMES, "classification", "detection", "segmentation", "translation", "rl"})


def imported_modules(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
            mods |= {f"{node.module}.{a.name}" for a in node.names}
    return mods


def _files(sub: str) -> list[Path]:
    return sorted((ROOT / sub).rglob("*.py"))


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_tasks(mod: str) -> bool:
    return mod == "tasks" or mod.startswith("tasks.")


def test_strategies_do_not_import_tasks() -> None:
    for f in _files("zoo/search"):
        bad = {m for m in imported_modules(f) if _is_tasks(m)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_tasks_do_not_import_strategies() -> None:
    for f in _files("tasks"):
        bad = {m for m in imported_modules(f) if m == "zoo.search" or m.startswith("zoo.search.")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_the_core_imports_no_task_package() -> None:
    """Only :mod:`zoo.plugins` loads task packages, by name, through importlib."""
    for f in _files("zoo"):
        bad = {m for m in imported_modules(f) if _is_tasks(m)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}; the core reaches tasks through its registries"
    assert "importlib.import_module" in (ROOT / "zoo" / "plugins.py").read_text()


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def task_names_in_code(path: Path) -> list[tuple[int, str]]:
    """(line, text) of string constants outside docstrings that name a task."""
    tree = ast.parse(path.read_text())
    docs = _docstring_nodes(tree)
    word = re.compile(r"\b(" + "|".join(TASK_NAMES) + r")\b")
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs and word.search(node.value):
            hits.append((node.lineno, node.value))
    return hits


def test_no_code_in_the_core_names_a_task() -> None:
    found = [f"{f.relative_to(ROOT)}:{line}: {text!r}" for f in _files("zoo") for line, text in task_names_in_code(f)]
    assert not found, "the core names a task:\n" + "\n".join(found)


def test_the_task_name_check_finds_a_literal(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text('"""The detection docstring is fine."""\nKEYS = {"detection": 1}\n# a detection comment is fine\n')
    assert task_names_in_code(f) == [(2, "detection")]


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``zoo`` modules it imports (anywhere in the file; ``from pkg import mod`` counts as pkg.mod)."""
    modules = {_module(f): f for f in _files("zoo")}
    graph: dict[str, set[str]] = {}
    for name, f in modules.items():
        targets = set()
        for m in imported_modules(f):
            while m and m not in modules:  # ``from zoo.hub.api import x`` -> zoo.hub.api; a name in a package -> the package
                m = m.rpartition(".")[0]
            if m and m != name:
                targets.add(m)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_core_import_graph_has_no_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _test_sources() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def test_no_test_module_imports_another() -> None:
    """What the tests share lives in tests/helpers/: no file under tests/ imports a ``test_*`` module (or a
    conftest), at the top or inside a function, so one module's tests never depend on another's."""
    bad = []
    for f in _test_sources():
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            bad += [
                f"{f.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if any(p.startswith(("test_", "conftest")) for p in n.split("."))
            ]
    assert not bad, bad


def test_the_cli_is_started_only_through_the_helper() -> None:
    """One way to start ``python -m zoo`` / ``zoo.hub`` in the tests (tests/helpers/cli.py: the ``zoo_cli``
    fixture, whose use marks a test ``e2e``): no other test file spells out such a command (test_tiers.py
    lists some as data, to check how the guard classifies them; it starts none)."""
    exempt = {ROOT / "tests" / "helpers" / "cli.py", ROOT / "tests" / "test_tiers.py"}
    found = []
    for f in _test_sources():
        if f in exempt:
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.List, ast.Tuple)):
                values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                if any(a == "-m" and isinstance(b, str) and (b == "zoo" or b.startswith("zoo.")) for a, b in zip(values, values[1:])):
                    found.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
