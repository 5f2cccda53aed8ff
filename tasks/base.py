"""The task plug-in interface.

A task owns its data, turns a genotype into a model, hands one-shot strategies a
:class:`OneShotProblem`, trains and evaluates. It knows the space/ops API and the
genotype, never a strategy. Register a task with ``@TASKS.register("name")`` in one
module of this package.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from zoo.estimate.problem import OneShotProblem
from zoo.registry import Registry
from zoo.space.base import SearchSpace


class DataError(ValueError):
    """Bad or missing data, reported in one line naming the path and the problem."""


class Task(ABC):
    """One task: data, models from genotypes, training, metrics (``score`` is higher-better)."""

    name: str = "abstract"
    metric: str = "score"
    supernet_kinds: tuple[str, ...] = ("darts",)  # one-shot supernets it builds (OneShotStrategy.supernet_kind)

    def __init__(self, cfg: Any, data_cfg: Any, trainer_cfg: Any, space: SearchSpace, seed: int = 0, progress: bool = True) -> None:
        self.cfg = cfg
        self.data_cfg = data_cfg
        self.trainer_cfg = trainer_cfg
        self.space = space
        self.seed = seed
        self.progress = progress
        self.device = torch.device("cpu")

    @abstractmethod
    def setup(self) -> None:
        """Loads and checks the data; raises :class:`DataError` before any training."""

    @abstractmethod
    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        """The discrete model (``final`` = the retrained size, else the estimation size)."""

    @abstractmethod
    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        """JSON arguments that rebuild :meth:`build_model`'s module with :func:`zoo.create_model`."""

    @abstractmethod
    def one_shot_problem(self) -> OneShotProblem:
        """The supernet and data for one-shot strategies."""

    @abstractmethod
    def estimate(self, genotype: Any) -> dict[str, Any]:
        """Short-budget estimation for multi-trial strategies: ``{"reward": ..., ...}``."""

    @abstractmethod
    def retrain(self, genotype: Any) -> tuple[nn.Module, dict[str, Any]]:
        """Trains the final model and returns it with its held-out test metrics."""

    def example_input(self) -> torch.Tensor:
        """One input of the task's shape (batch of 1), for timing a built model's latency."""
        raise NotImplementedError(f"task={self.name} has no example_input(), so it cannot time its models (objective latency)")

    def describe_data(self) -> dict[str, Any]:
        return {}


TASKS: Registry[type[Task]] = Registry("task", "tasks")
