"""What a task hands a one-shot strategy: the supernet, its data and its loss.

This is the only thing one-shot strategies and tasks share, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class OneShotProblem:
    """A weight-sharing search problem.

    Attributes:
        supernet: module with ``arch_parameters()``, ``weight_parameters()`` and ``genotype()``.
        train_loader: batches for the weights (an iterable, re-iterated each epoch).
        valid_loader: batches for the architecture parameters.
        loss: ``loss(model, batch) -> scalar tensor``.
        score: ``score(model, loader) -> float``, higher is better (e.g. accuracy).
        device: where to train.
        make_supernet: optional ``make_supernet(kind, **kwargs) -> nn.Module``, a fresh supernet
            of another kind ("darts", "pc_darts", "single_path") built with the task's
            configuration; see :meth:`build_supernet`.
        space: the search space the supernets relax (for strategies that sample genotypes).
        checkpoint: where the strategy saves and restores itself at epoch boundaries (set by the
            runner: a :class:`zoo.runners.checkpoint.EpochCheckpoint`, or ``None`` for no checkpoints).
    """

    supernet: nn.Module
    train_loader: Iterable[Any]
    valid_loader: Iterable[Any]
    loss: Callable[[nn.Module, Any], torch.Tensor]
    score: Callable[[nn.Module, Iterable[Any]], float]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    make_supernet: Callable[..., nn.Module] | None = None
    space: Any = None
    checkpoint: Any = None

    def build_supernet(self, kind: str, **kwargs: Any) -> nn.Module:
        """A fresh supernet of ``kind`` from the task; a one-line ``ValueError`` if the task has none."""
        if self.make_supernet is None:
            raise ValueError(f"this task offers no {kind!r} supernet (its one-shot problem has no make_supernet)")
        return self.make_supernet(kind, **kwargs)
