"""timm-style model factory: ``create_model(name_or_genotype, num_classes=..., ...)``.

The core builds the stacked-cell network (:class:`CellNetwork`); a task that builds other
models (a detector, a segmenter) registers its builder in :data:`MODEL_BUILDERS` under its
task name. A bundle's ``config.json`` records its ``task``, so loading picks the builder by
task; a bare genotype whose class names a ``task`` (the genotype classes tasks define)
picks that task's builder.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from zoo.registry import Registry
from zoo.space.genotype import Genotype, GenotypeError, genotype_from_json
from zoo.space.network import CellNetwork
from zoo.space.published import PUBLISHED

# task name -> builder(genotype, **model args) -> nn.Module; a task without one gets the cell network
MODEL_BUILDERS: Registry[Any] = Registry("model builder", plugins=True)


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


def builder_for(task: str | None, genotype: Any = None) -> Any:
    """The registered builder of ``task`` (or of the genotype's own task), else ``None`` (cell network)."""
    task = task or getattr(genotype, "task", None)
    if task is not None and task in MODEL_BUILDERS:
        return MODEL_BUILDERS.get(task)
    return None


def create_model(
    arch: Any,
    num_classes: int = 10,
    init_channels: int = 36,
    layers: int = 20,
    auxiliary: bool = False,
    in_chans: int = 3,
    stem: str = "cifar",
    drop_path_prob: float = 0.0,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    task: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Builds the model of a published name or a genotype.

    ``task`` (a bundle's recorded task) picks a task's registered builder; without one the
    result is the discrete cell network. ``mean``/``std``, when given, put a normalisation
    layer in front so the model takes images in [0, 1] (how the project's checkpoints are saved).
    """
    genotype = resolve_genotype(arch)
    builder = builder_for(task, genotype)
    if builder is not None:
        return builder(
            genotype,
            num_classes=num_classes,
            init_channels=init_channels,
            layers=layers,
            in_chans=in_chans,
            mean=mean,
            std=std,
            drop_path_prob=drop_path_prob,
            **kwargs,
        )
    net = CellNetwork(
        genotype,
        num_classes=num_classes,
        init_channels=init_channels,
        layers=layers,
        auxiliary=auxiliary,
        in_chans=in_chans,
        stem=stem,
        drop_path_prob=drop_path_prob,
        **kwargs,
    )
    if mean is not None and std is not None:
        return NormalizedModel(Normalize(mean, std), net)
    return net


class Normalize(nn.Module):
    """Per-channel normalisation baked into the model, so a checkpoint takes [0, 1] images."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class NormalizedModel(nn.Module):
    """A normalisation layer in front of a cell network; forwards the network's attributes."""

    def __init__(self, normalize: nn.Module, net: CellNetwork) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    @property
    def drop_path_prob(self) -> float:
        return self.net.drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        self.net.drop_path_prob = p

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """The network's stages, with module names relative to this wrapper (``net.cells.N``)."""
        return [{**f, "module": f"net.{f['module']}"} if "module" in f else dict(f) for f in self.net.feature_info]

    def forward_features(self, x: Any) -> Any:
        return self.net.forward_features(self.normalize(x))

    def forward(self, x: Any) -> Any:
        return self.net(self.normalize(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)
