"""Every task.*, data.* and trainer.* value is declared, and a bad one fails in one line.

Parametrised over the task registry and the data options each task declares, so a new
task or data set is covered as soon as it registers.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import ZooCli
from omegaconf import OmegaConf

from zoo.__main__ import compose_config
from zoo.config_values import ConfigError, Count, Flag, Number, OneOf, Text, check_values
from zoo.pipeline import TOP_LEVEL_SPECS, build_checks
from zoo.task import TASKS

TASK_DATA = [(t, d) for t in TASKS.names() for d in TASKS.get(t).data_specs]


@functools.cache
def _composed(overrides: tuple[str, ...]) -> Any:
    return compose_config(list(overrides))


def compose(overrides: list[str]) -> Any:
    """The config ``overrides`` compose to: composed once per list (Hydra's composition is the slow
    part), a fresh copy for each caller to change."""
    return copy.deepcopy(_composed(tuple(overrides)))


def leaves(node: Any, prefix: str = "") -> Iterator[str]:
    for k, v in node.items():
        key = f"{prefix}{k}"
        if OmegaConf.is_dict(v):
            yield from leaves(v, f"{key}.")
        else:
            yield key


def bad_value(spec: Any) -> Any:
    """A value the spec must reject (and that a careless reader would accept)."""
    if isinstance(spec, Number):
        if spec.low is not None:
            return spec.low - 1 if spec.integer else spec.low - 0.5
        if spec.high is not None:
            return spec.high + 1
        return "abc"
    if isinstance(spec, OneOf):
        return "no-such-option"
    if isinstance(spec, Flag):
        return "maybe"
    if isinstance(spec, Text):
        return [] if spec.items else ""
    if isinstance(spec, Count):
        return "-5k"
    raise AssertionError(f"no bad value for {spec!r}")


@pytest.mark.parametrize("task", TASKS.names())
def test_every_task_key_has_a_spec(task: str) -> None:
    cfg = compose([f"task={task}"])
    declared = set(TASKS.get(task).config_specs)
    undeclared = [k for k in leaves(cfg.task) if k != "name" and k not in declared]
    assert not undeclared, f"task={task}: conf keys without a value spec: {undeclared}"
    assert declared <= set(leaves(cfg.task)), f"task={task}: specs for keys the conf does not have: {declared - set(leaves(cfg.task))}"


@pytest.mark.parametrize("task,data", TASK_DATA)
def test_every_data_key_has_a_spec(task: str, data: str) -> None:
    cfg = compose([f"task={task}", f"data={data}"])
    declared = set(TASKS.get(task).data_specs[data])
    undeclared = [k for k in leaves(cfg.data) if k != "name" and k not in declared]
    assert not undeclared, f"data={data}: conf keys without a value spec: {undeclared}"
    assert declared <= set(leaves(cfg.data)), f"data={data}: specs for keys the conf does not have: {declared - set(leaves(cfg.data))}"


@pytest.mark.parametrize("task", TASKS.names())
def test_every_trainer_key_is_one_the_task_reads(task: str) -> None:
    """A task's trainer conf holds exactly the keys its training reads (``Task.trainer_specs``)."""
    cfg = compose([f"task={task}"])
    assert set(leaves(cfg.trainer)) == set(TASKS.get(task).trainer_specs)


def test_every_top_level_key_has_a_spec() -> None:
    cfg = compose([])
    top = [k for k, v in cfg.items() if not OmegaConf.is_dict(v) and k not in ("mode", "checkpoint")]
    assert set(top) == set(TOP_LEVEL_SPECS)


@pytest.mark.parametrize("task,data", TASK_DATA)
def test_bad_values_fail_in_one_line_naming_the_field(task: str, data: str) -> None:
    """Each declared field, set to a value its spec rejects, fails the pre-run checks with its name."""
    cls = TASKS.get(task)
    fields = [("task", k, s) for k, s in cls.config_specs.items()] + [("data", k, s) for k, s in cls.data_specs[data].items()]
    fields += [("trainer", k, s) for k, s in cls.trainer_specs.items()]
    for group, key, spec in fields:
        cfg = compose([f"task={task}", f"data={data}"])
        OmegaConf.update(cfg, f"{group}.{key}", bad_value(spec), force_add=False)
        with pytest.raises(ConfigError) as err:
            build_checks(cfg)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{group}.{key}=") and "allowed:" in msg, msg


@pytest.mark.parametrize("task,data", TASK_DATA)
def test_default_values_pass_their_specs(task: str, data: str) -> None:
    cfg = compose([f"task={task}", f"data={data}"])
    cls = TASKS.get(task)
    check_values(cfg.task, cls.config_specs, "task")
    check_values(cfg.data, cls.data_specs[data], "data")
    check_values(cfg.trainer, cls.trainer_specs, "trainer")


def test_data_of_another_task_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"^data=fashion_mnist is not detection data; allowed with task=detection: scenes, trees, coco, voc$"
    ):
        build_checks(compose(["task=detection", "data=fashion_mnist"]))


def test_spec_wording() -> None:
    assert str(Number(integer=False, low=0, high=1, low_open=True, high_open=True)) == "a number with 0 < x < 1"
    assert str(Number(integer=True, low=1, null=True)) == "null or an integer >= 1"
    assert not Number(integer=True, low=1).allows(True)  # a bool is not an integer here
    assert not Number(integer=True, low=1).allows(2.0)
    assert Number(integer=False, low=0).allows(3)
    assert not Text(items=True).allows(["a", ""])


def test_cli_reports_a_bad_value_before_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """Through the real CLI: exit 2, one stderr line, no run directory written."""
    run_dir = tmp_path / "run"
    r = zoo_cli.run("data.test_fraction=1.5", run_dir=run_dir, progress=None, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "zoo: error: data.test_fraction=1.5 is invalid; allowed: a number with 0 < x < 1"
    assert not run_dir.exists()


@pytest.mark.parametrize("task", TASKS.names())
def test_a_space_the_task_cannot_build_is_refused(task: str) -> None:
    from zoo.space.base import SPACES

    other = next(s for s in SPACES.names() if s not in TASKS.get(task).spaces)
    with pytest.raises(ConfigError) as err:
        build_checks(compose([f"task={task}", f"space={other}"]))
    assert str(err.value).startswith(f"space={other} is invalid for task={task}; allowed: {', '.join(TASKS.get(task).spaces)}")
