"""Every task folder has the same layout: the same roles in the same file names.

The template (``docs/architecture.md``, "Adding a task"), checked for every registered task
(``zoo.task.TASKS``, bundled or an entry-point plug-in):

* required modules: ``__init__.py``, ``task.py``, ``data.py``, ``metrics.py``, ``finetune.py``,
  ``hub.py``, and the ``conf/`` folder;
* role modules a task has when it has the role: ``model.py``, ``space.py``, ``supernet.py``,
  ``play.py``, ``integrations/<library>.py``;
* the listed extras (:data:`EXTRAS`), each with its reason; any other module fails.

The registered objects sit in their role's file: the task class in ``task.py``, the fine-tuner in
``finetune.py``, the hub facts in ``hub.py``, the model builder in ``model.py``, spaces and genotype
classes in ``space.py``, the player in ``play.py``, and each ecosystem bridge in
``integrations/`` under the library's name (``integrations/<library>.py``).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from zoo.finetune import FINETUNERS
from zoo.hub.facts import BRIDGES, HUB_FACTS
from zoo.models import MODEL_BUILDERS
from zoo.play import PLAYERS
from zoo.space.base import SPACES
from zoo.task import TASKS

REQUIRED = ("__init__", "task", "data", "metrics", "finetune", "hub")
ROLES = ("model", "space", "supernet", "play")  # present when the task has the role
EXTRAS = {
    "ops": "ops of an op domain the core lacks, registered in zoo.space.ops.OPS (translation's seq2seq ops)",
    "train": "a training loop of the task's own where zoo.fit.fit does not apply (rl: PPO by stable-baselines3, chunked)",
}
SUBPACKAGES = ("integrations",)

TASK_NAMES = TASKS.names()
per_task = pytest.mark.parametrize("name", TASK_NAMES)


def package_of(name: str) -> str:
    """The task's package: the one whose ``task`` module defines the task class."""
    module = TASKS.get(name).__module__
    package, _, last = module.rpartition(".")
    assert last == "task", f"task {name!r} is defined in {module}; the task class belongs in <package>.task"
    return package


def folder_of(name: str) -> Path:
    return Path(sys.modules[package_of(name)].__file__).resolve().parent  # type: ignore[arg-type]


def module_of(obj: Any) -> str:
    return str(getattr(inspect.unwrap(obj), "__module__", ""))


def own(registry: Any, package: str) -> dict[str, str]:
    """The entries of ``registry`` that ``package`` registered: name -> module."""
    return {k: module_of(v) for k, v in registry.items() if module_of(v) == package or module_of(v).startswith(package + ".")}


def test_every_registered_task_is_checked() -> None:
    assert TASK_NAMES, "no task is registered"


@per_task
def test_the_folder_holds_the_template_modules_and_nothing_else(name: str) -> None:
    folder = folder_of(name)
    modules = {p.stem for p in folder.glob("*.py")}
    missing = [m for m in REQUIRED if m not in modules]
    assert not missing, (
        f"tasks/{folder.name}/ lacks {', '.join(m + '.py' for m in missing)} (the template: docs/architecture.md, 'Adding a task')"
    )
    other = sorted(modules - {*REQUIRED, *ROLES, *EXTRAS})
    assert not other, (
        f"tasks/{folder.name}/ has module(s) {', '.join(m + '.py' for m in other)} outside the template: "
        f"required {', '.join(REQUIRED)}; roles {', '.join(ROLES)}; extras {', '.join(EXTRAS)}"
    )
    assert (folder / "conf").is_dir(), f"tasks/{folder.name}/ has no conf/ folder"
    packages = sorted(p.name for p in folder.iterdir() if (p / "__init__.py").is_file())
    assert set(packages) <= set(SUBPACKAGES), f"tasks/{folder.name}/ has sub-package(s) {packages}; allowed: {', '.join(SUBPACKAGES)}"


@per_task
def test_each_registered_object_sits_in_its_role_file(name: str) -> None:
    package = package_of(name)
    assert module_of(FINETUNERS.get(name)) == f"{package}.finetune", f"task {name!r} registers no fine-tuner in {package}.finetune"
    assert module_of(HUB_FACTS.get(name)) == f"{package}.hub", f"task {name!r} registers no hub facts in {package}.hub"
    if name in MODEL_BUILDERS:
        assert module_of(MODEL_BUILDERS.get(name)) == f"{package}.model"
    if name in PLAYERS:
        assert module_of(PLAYERS.get(name)) == f"{package}.play"
    spaces = own(SPACES, package)
    assert all(m == f"{package}.space" for m in spaces.values()), f"spaces registered outside {package}.space: {spaces}"
    from zoo.space.genotype import _GENOTYPE_CLASSES

    genotypes = own(dict(_GENOTYPE_CLASSES), package)
    assert all(m == f"{package}.space" for m in genotypes.values()), f"genotype classes outside {package}.space: {genotypes}"


@per_task
def test_integrations_are_named_after_their_library_bridge(name: str) -> None:
    folder = folder_of(name)
    package = package_of(name)
    bridges = own(BRIDGES, package)  # library -> the module that registers its bridge
    for library, module in bridges.items():
        assert module in (f"{package}.integrations", f"{package}.integrations.{library}"), (
            f"the {library!r} bridge is registered in {module}; it belongs in {package}.integrations"
        )
        assert (folder / "integrations" / f"{library}.py").is_file(), (
            f"the {library!r} bridge has no tasks/{folder.name}/integrations/{library}.py"
        )
    modules = {p.stem for p in (folder / "integrations").glob("*.py")} - {"__init__"}
    unknown = sorted(modules - set(bridges))
    assert not unknown, (
        f"tasks/{folder.name}/integrations/ has {', '.join(m + '.py' for m in unknown)}, which bridge no library registered in BRIDGES "
        f"(integrations/<library>.py, named as its @BRIDGES.register('<library>')); this task's bridges: {', '.join(sorted(bridges)) or 'none'}"
    )


def test_the_published_entries_script_names_no_task() -> None:
    """``scripts/zoo_published_entries.py`` reaches the tasks through their hub facts (the plug-ins)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    tree = ast.parse((root / "scripts" / "zoo_published_entries.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m == "tasks" or m.startswith("tasks.")], imported
    names = {*TASK_NAMES, *(p.name for p in (root / "tasks").iterdir() if (p / "__init__.py").is_file())}
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in literals[1:] if any(t in s for t in names)], "the script names a task"
