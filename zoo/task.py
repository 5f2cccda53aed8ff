"""The task plug-in interface.

A task owns its data, turns a genotype into a model, hands one-shot strategies a
:class:`OneShotProblem`, trains and evaluates. It knows the space/ops API and the
genotype, never a strategy. A task is one package under ``tasks/`` (see
``docs/architecture.md``, "Adding a task"): it registers its :class:`Task` subclass with
``@TASKS.register("name")`` and, beside it, its model builder (:data:`zoo.models.MODEL_BUILDERS`),
fine-tuner (:data:`zoo.finetune.FINETUNERS`), hub facts (:data:`zoo.hub.facts.HUB_FACTS`) and
ecosystem bridges (:data:`zoo.hub.facts.BRIDGES`); the core finds them through these registries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from zoo.config_values import NON_NEGATIVE, POSITIVE, POSITIVE_INT, ConfigError, Flag, Spec, check_values
from zoo.device import check_amp, resolve_device
from zoo.estimate.problem import OneShotProblem
from zoo.registry import Registry
from zoo.space.base import SearchSpace


class DataError(ValueError):
    """Bad or missing data, reported in one line naming the path and the problem."""


# what every task's trainer reads; a task adds the keys its own training reads (``trainer_specs``)
COMMON_TRAINER_SPECS: dict[str, Spec] = {
    "batch_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "estimate_epochs": POSITIVE_INT,
    "lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "grad_clip": NON_NEGATIVE,
    "amp": Flag(),  # bf16 autocast of the training steps (CUDA only; zoo.device)
}


class Task(ABC):
    """One task: data, models from genotypes, training, metrics (``score`` is higher-better)."""

    name: str = "abstract"
    metric: str = "score"
    supernet_kinds: tuple[str, ...] = ("darts",)  # one-shot supernets it builds (OneShotStrategy.supernet_kind)
    second_order: ClassVar[bool] = (
        True  # its one-shot loss calls the supernet's forward only, so second-order DARTS can re-bind the weights
    )
    spaces: ClassVar[tuple[str, ...]] = ("darts",)  # search spaces whose genotypes it builds models from
    config_specs: ClassVar[Mapping[str, Spec]] = {}  # ``task.*`` values (dotted keys)
    data_specs: ClassVar[Mapping[str, Mapping[str, Spec]]] = {}  # data option -> its ``data.*`` values
    trainer_specs: ClassVar[Mapping[str, Spec]] = COMMON_TRAINER_SPECS  # the ``trainer.*`` values its training reads
    amp_unsupported: ClassVar[str] = ""  # why ``trainer.amp=true`` cannot apply to its training ("": it applies)

    @classmethod
    def check_config(cls, cfg: Any, data_cfg: Any) -> None:
        """One-line errors for a data option this task does not read or a bad ``task.*``/``data.*`` value."""
        if cls.data_specs and data_cfg.name not in cls.data_specs:
            raise ConfigError(f"data={data_cfg.name} is not {cls.name} data; allowed with task={cls.name}: {', '.join(cls.data_specs)}")
        check_values(cfg, cls.config_specs, "task")
        check_values(data_cfg, cls.data_specs.get(data_cfg.name, {}), "data")

    @classmethod
    def check_trainer(cls, trainer_cfg: Any) -> None:
        """One-line errors for a trainer of another task (its keys differ from what this task reads)
        or a bad ``trainer.*`` value."""
        keys = set(trainer_cfg.keys()) if trainer_cfg is not None else set()
        if keys != set(cls.trainer_specs):
            odd = sorted(keys - set(cls.trainer_specs)) or sorted(set(cls.trainer_specs) - keys)
            raise ConfigError(
                f"trainer is not a {cls.name} trainer ({'has' if keys - set(cls.trainer_specs) else 'lacks'} {', '.join(odd)}); "
                f"allowed with task={cls.name}: trainer={cls.name}"
            )
        check_values(trainer_cfg, cls.trainer_specs, "trainer")

    def __init__(
        self,
        cfg: Any,
        data_cfg: Any,
        trainer_cfg: Any,
        space: SearchSpace,
        seed: int = 0,
        progress: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        """``device``: where it trains and evaluates (a ``device`` option or a torch device; default ``auto``)."""
        self.cfg = cfg
        self.data_cfg = data_cfg
        self.trainer_cfg = trainer_cfg
        self.space = space
        self.seed = seed
        self.progress = progress
        self.device = device if isinstance(device, torch.device) else resolve_device("auto" if device is None else device)
        self.amp = bool(trainer_cfg.get("amp", False)) if trainer_cfg is not None else False
        if self.amp and self.amp_unsupported:
            raise ConfigError(f"trainer.amp=true is invalid with task={self.name} ({self.amp_unsupported}); allowed: false")
        check_amp(self.amp, self.device)
        if getattr(space, "name", None) not in self.spaces:
            hint = " (space=nb201 is searched against its tables: estimate=nb201)" if getattr(space, "name", None) == "nb201" else ""
            raise ConfigError(
                f"space={getattr(space, 'name', space)} is invalid for task={self.name}; allowed: {', '.join(self.spaces)}{hint}"
            )

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
    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        """Trains the final model and returns it with its held-out test metrics.

        ``checkpoints`` (:class:`zoo.runners.checkpoint.TrainingCheckpoints`): each model trained
        here saves an epoch checkpoint under its own name (``checkpoints.for_model(name)``) and
        continues from it when the run resumes."""

    def example_input(self) -> torch.Tensor:
        """One input of the task's shape (batch of 1), for timing a built model's latency."""
        raise NotImplementedError(f"task={self.name} has no example_input(), so it cannot time its models (objective latency)")

    def random_input(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` random inputs of :meth:`example_input`'s shape and kind (default: floats in [0, 1]; a task
        whose models read token ids returns ids), for tests that compare two models' outputs."""
        return torch.rand((batch, *self.example_input().shape[1:]), generator=generator)

    def describe_data(self) -> dict[str, Any]:
        """What the bundle's ``config.json`` records of the data (name, sizes, splits)."""
        return {}

    classes: list[str] | None = None  # output labels in index order, recorded in the bundle (set by setup)

    def write_outputs(self, run_dir: Any) -> list[str]:
        """Task-specific files written beside the bundle after retraining (e.g. drawn predictions); their names."""
        return []


TASKS: Registry[type[Task]] = Registry("task", plugins=True)
