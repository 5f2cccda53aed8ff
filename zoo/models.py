"""timm-style model factory: ``create_model(name_or_genotype, task=None, **model args)``.

Every model comes from a builder in :data:`MODEL_BUILDERS`, registered by its task under the
task's name, and each builder gets only the arguments given (its own defaults fill the rest).
The builder is the one of ``task`` (a bundle's ``config.json`` records it), else the one of the
genotype's class (``task`` on the genotype classes tasks define), else the one that claimed the
genotype's space (:func:`model_builder` ``genotypes=``: the core's genotype classes name no task).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from zoo.registry import Registry
from zoo.space.genotype import Genotype, GenotypeError, genotype_from_json
from zoo.space.published import PUBLISHED

# task name -> builder(genotype, **that task's model arguments) -> nn.Module
MODEL_BUILDERS: Registry[Any] = Registry("model builder", plugins=True)
# genotype space -> the task whose builder builds it when neither the caller nor the genotype class names a task
GENOTYPE_TASKS: dict[str, str] = {}
B = TypeVar("B", bound=Callable[..., nn.Module])


def model_builder(task: str, genotypes: Sequence[str] = ()) -> Callable[[B], B]:
    """Registers ``task``'s builder in :data:`MODEL_BUILDERS` (as ``@MODEL_BUILDERS.register(task)``);
    ``genotypes``: spaces of genotype classes that name no task which it builds when no task is named."""

    def deco(fn: B) -> B:
        MODEL_BUILDERS.add(task, fn)
        for space in genotypes:
            if GENOTYPE_TASKS.setdefault(space, task) != task:
                raise ValueError(f"{space} genotypes are claimed by the builders of {GENOTYPE_TASKS[space]!r} and {task!r}")
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(PUBLISHED)


def resolve_genotype(arch: Any) -> Any:
    """A published name, a genotype, its JSON dict, JSON text or the DARTS text form."""
    if isinstance(arch, Genotype) or hasattr(arch, "to_json"):
        return arch
    if isinstance(arch, dict):
        return genotype_from_json(arch)
    if isinstance(arch, str):
        key = arch.lower().replace("-", "_")
        if key in PUBLISHED:
            return PUBLISHED[key]
        text = arch.strip()
        if text.startswith("Genotype("):
            return Genotype.from_text(text)
        if text.startswith("{"):
            return genotype_from_json(json.loads(text))
        raise GenotypeError(f"model name {arch!r} is unknown; allowed: {', '.join(list_models())} or a genotype")
    raise GenotypeError(f"cannot build a model from {type(arch).__name__}")


def builder_for(task: str | None, genotype: Any = None) -> Callable[..., nn.Module]:
    """The builder of ``task``, else of the genotype's class's task, else of the task that claimed its space.

    A task without a builder of its own (a plug-in that is not installed here, or one that builds
    the cell network) falls through to the genotype's builder, so its bundles still load.
    """
    for name in (task, getattr(genotype, "task", None)):
        if name and name in MODEL_BUILDERS:
            return MODEL_BUILDERS.get(name)
    space = getattr(genotype, "space", None)
    MODEL_BUILDERS.names()  # loads the task packages, which claim the core's genotype spaces
    if space in GENOTYPE_TASKS:
        return MODEL_BUILDERS.get(GENOTYPE_TASKS[space])
    named = f" of task {task!r}" if task else ""
    raise GenotypeError(
        f"no model builder for a {space or type(genotype).__name__!r} genotype{named}; allowed tasks: {', '.join(MODEL_BUILDERS.names())}"
    )


def create_model(arch: Any, task: str | None = None, **kwargs: Any) -> nn.Module:
    """Builds the model of a published name or a genotype (object, JSON dict or text, DARTS text form).

    ``task`` (a bundle's recorded task) picks the builder (see :func:`builder_for`); ``kwargs`` are
    that builder's model arguments (a bundle's ``config.json`` ``model``), e.g. for the cell network
    ``num_classes``, ``init_channels``, ``layers``, ``auxiliary``, ``in_chans``, ``stem``,
    ``drop_path_prob``, and ``mean``/``std``, which put a normalisation layer in front so the model
    takes images in [0, 1] (how the project's checkpoints are saved).
    """
    genotype = resolve_genotype(arch)
    return builder_for(task, genotype)(genotype, **kwargs)


class Normalize(nn.Module):
    """Per-channel normalisation baked into the model, so a checkpoint takes [0, 1] images."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
