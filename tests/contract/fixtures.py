"""The contract suite's per-task fixtures: tiny real data and tiny models for every registered task.

A task joins the contract suite (``tests/contract/test_task_contract.py``) by registering one
fixture factory beside its own tests, in ``tests/tasks/<name>/contract_fixture.py``::

    from fixtures import BadData, TaskFixture, contract_fixture

    @contract_fixture("segmentation")
    def segmentation(root: Path) -> TaskFixture:
        write_tiny_masks(root)                           # a few real images, written under root
        return TaskFixture(
            overrides=["task=segmentation", "data=masks", f"data.root={root}", "trainer.epochs=2", ...],
            bad_data=[BadData("no masks", "data.root={root} has no masks", write=write_images_only)],
        )

:func:`load_fixtures` imports every ``tests/tasks/*/contract_fixture.py`` by file path (they
share one module name), so nothing here lists the tasks.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.config_values import ConfigError
from zoo.task import DataError

TASK_TESTS = Path(__file__).resolve().parents[1] / "tasks"


@dataclass(frozen=True)
class BadData:
    """One broken input and the start of the one-line error it must give.

    ``write(dir)`` (optional) writes broken data into the empty directory ``dir`` and returns
    config overrides pointing at it; ``overrides`` are added as they are. ``{root}`` in
    ``expect`` and in ``overrides`` stands for that directory. ``error`` is :class:`DataError`
    (raised by ``task.setup()``) or :class:`ConfigError` (raised by ``zoo.build.make_task``,
    before any data is read).
    """

    id: str
    expect: str
    overrides: tuple[str, ...] = ()
    write: Callable[[Path], list[str]] | None = None
    error: type[ValueError] = DataError

    def __post_init__(self) -> None:
        if self.error not in (DataError, ConfigError):
            raise TypeError(f"BadData {self.id!r}: error must be DataError or ConfigError, not {self.error.__name__}")


@dataclass(frozen=True)
class TaskFixture:
    """Config overrides (for :func:`zoo.__main__.compose_config`) that give the task tiny real
    data and tiny models: ``task=<name>`` first, then data, model sizes, ``trainer.epochs=2`` and a
    small ``trainer.batch_size``. ``finetune_overrides`` are added for the fine-tuning test."""

    overrides: list[str]
    bad_data: list[BadData] = field(default_factory=list)
    finetune_overrides: list[str] = field(default_factory=list)


FixtureFactory = Callable[[Path], TaskFixture]  # writes the tiny data under the given directory
CONTRACT_FIXTURES: dict[str, FixtureFactory] = {}
_loaded = False


def contract_fixture(task: str) -> Callable[[FixtureFactory], FixtureFactory]:
    """Registers the contract fixture factory of ``task`` (its name in :data:`zoo.task.TASKS`)."""

    def deco(factory: FixtureFactory) -> FixtureFactory:
        if task in CONTRACT_FIXTURES and CONTRACT_FIXTURES[task] is not factory:
            raise ValueError(f"task {task!r} registers two contract fixtures")
        CONTRACT_FIXTURES[task] = factory
        return factory

    return deco


def load_fixtures() -> dict[str, FixtureFactory]:
    """Imports every ``tests/tasks/*/contract_fixture.py`` once; returns the registry."""
    global _loaded
    if not _loaded:
        _loaded = True
        sys.modules.setdefault("fixtures", sys.modules[__name__])  # the fixture modules' `from fixtures import ...` finds this registry
        for path in sorted(TASK_TESTS.glob("*/contract_fixture.py")):
            name = f"contract_fixture_{path.parent.name}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    return CONTRACT_FIXTURES


def merge_overrides(base: list[str], extra: list[str] | tuple[str, ...]) -> list[str]:
    """``base`` with ``extra`` appended, each key of ``extra`` replacing the same key of ``base``;
    a group choice (``data=coco``) also drops ``base``'s values of that group (``data.root=...``)."""
    keys = [e.split("=", 1)[0].lstrip("+~") for e in extra]
    kept = [b for b in base if not any(b.split("=", 1)[0].lstrip("+~") == k or ("." not in k and b.startswith(f"{k}.")) for k in keys)]
    return [*kept, *extra]
