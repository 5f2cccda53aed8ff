"""Classification loss (cross-entropy, plus the auxiliary head's as in DARTS) and top-1 accuracy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from zoo.device import model_device


def logits(out: Any) -> torch.Tensor:
    """The main logits of a network that may also return auxiliary ones."""
    return out[0] if isinstance(out, tuple) else out


def classification_loss(model: nn.Module, batch: Any, aux_weight: float = 0.0) -> torch.Tensor:
    x, y = batch
    out = model(x)
    if isinstance(out, tuple):
        main, aux = out
        return nn.functional.cross_entropy(main, y) + aux_weight * nn.functional.cross_entropy(aux, y)
    return nn.functional.cross_entropy(out, y)


@torch.no_grad()
def accuracy(model: nn.Module, loader: Iterable[Any]) -> float:
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = total = 0
    for x, y in loader:
        pred = logits(model(x.to(device))).argmax(dim=1)
        correct += int((pred == y.to(device)).sum())
        total += len(y)
    model.train(was_training)
    return correct / max(total, 1)
