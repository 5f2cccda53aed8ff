"""Building a config's search space and task plug-in: one place for search and fine-tuning alike.

Constructors check their own arguments and ``Task.check_config`` / ``Task.check_trainer`` the
values the task reads, so everything fails in one line before data is loaded
(:meth:`zoo.task.Task.setup` loads it).
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from zoo.device import resolve_device
from zoo.space.base import SPACES, SearchSpace
from zoo.task import TASKS, Task


def make_space(cfg: Any) -> SearchSpace:
    """The ``space`` group's search space."""
    space_cfg = OmegaConf.to_container(cfg.space, resolve=True)
    return SPACES.get(space_cfg.pop("name"))(**space_cfg)  # type: ignore[union-attr]


def task_class(cfg: Any) -> type[Task]:
    return TASKS.get(cfg.task.name)


def make_task(cfg: Any, data_cfg: Any = None, space: SearchSpace | None = None) -> Task:
    """The ``cfg.task.name`` plug-in on ``data_cfg`` (default ``cfg.data``), on ``cfg.device``, checked, not yet set up."""
    data_cfg = cfg.data if data_cfg is None else data_cfg
    task_cls = task_class(cfg)
    task_cls.check_trainer(cfg.trainer)
    task_cls.check_config(cfg.task, data_cfg)
    space = make_space(cfg) if space is None else space
    device = resolve_device(cfg.get("device", "auto"))
    return task_cls(cfg.task, data_cfg, cfg.trainer, space, seed=int(cfg.seed), progress=bool(cfg.progress), device=device)
