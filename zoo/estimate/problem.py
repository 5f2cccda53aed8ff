"""What a task hands a one-shot strategy: the supernet, its data and its loss.

This is the only thing one-shot strategies and tasks share, so neither imports the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

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
    """

    supernet: nn.Module
    train_loader: Iterable[Any]
    valid_loader: Iterable[Any]
    loss: Callable[[nn.Module, Any], torch.Tensor]
    score: Callable[[nn.Module, Iterable[Any]], float]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
