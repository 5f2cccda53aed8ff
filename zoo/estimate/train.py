"""Supervised training and evaluation loops shared by the image and sequence tasks.

SGD with momentum and a cosine learning-rate schedule (Loshchilov & Hutter, SGDR 2017),
gradient clipping, the auxiliary-head loss and a linearly increasing drop-path
probability, as in the DARTS evaluation protocol (Liu et al., ICLR 2019).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def classification_loss(model: nn.Module, batch: Any, aux_weight: float = 0.0) -> torch.Tensor:
    x, y = batch
    out = model(x)
    if isinstance(out, tuple):
        logits, aux = out
        return nn.functional.cross_entropy(logits, y) + aux_weight * nn.functional.cross_entropy(aux, y)
    return nn.functional.cross_entropy(out, y)


@torch.no_grad()
def accuracy(model: nn.Module, loader: Iterable[Any], device: torch.device | str = "cpu") -> float:
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in loader:
        pred = _logits(model(x.to(device))).argmax(dim=1)
        correct += int((pred == y.to(device)).sum())
        total += len(y)
    model.train(was_training)
    return correct / max(total, 1)


def train_epochs(
    model: nn.Module,
    loader: Iterable[Any],
    epochs: int,
    lr: float = 0.025,
    lr_min: float = 0.0,
    momentum: float = 0.9,
    weight_decay: float = 3e-4,
    grad_clip: float = 5.0,
    aux_weight: float = 0.4,
    drop_path_prob: float = 0.0,
    loss: Callable[..., torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    desc: str = "train",
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
    checkpoint: Any = None,
) -> float:
    """Trains in place; returns the mean training loss of the last epoch.

    ``checkpoint`` (a :class:`zoo.runners.checkpoint.EpochCheckpoint`) saves the model, the
    optimizer and the random states after every epoch and, when resuming, continues after the
    last saved one, so the result equals an uninterrupted run's.
    """
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = loss or (lambda m, b: classification_loss(m, b, aux_weight))
    n = len(loader)  # type: ignore[arg-type]
    objects = {"model": model, "optimizer": opt}  # what a checkpoint saves and restores
    last, start = float("nan"), 0
    if checkpoint is not None:
        start, last = resume_training(checkpoint, "SGD training", objects, epochs, loader)
    bar = tqdm(total=epochs * n, initial=start * n, desc=desc, disable=not progress, leave=False)
    for epoch in range(start, epochs):
        for g in opt.param_groups:
            g["lr"] = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs))
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = drop_path_prob * epoch / epochs
        model.train()
        total, seen = 0.0, 0
        for batch in loader:
            batch = tuple(b.to(device) for b in batch)
            opt.zero_grad(set_to_none=True)
            l = loss_fn(model, batch)
            l.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            total += float(l.detach())
            seen += 1
            bar.update(1)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        last = total / max(seen, 1)
        if checkpoint is not None:
            checkpoint.save("SGD training", objects, {"epoch": epoch, "epochs": epochs, "loss": last})
        if on_epoch is not None:
            on_epoch(epoch, last)
    bar.close()
    return last


def resume_training(checkpoint: Any, kind: str, objects: dict[str, Any], epochs: int, loader: Any) -> tuple[int, float]:
    """Restores ``objects`` from ``checkpoint`` when it holds a saved epoch of the same schedule.

    Returns (first epoch to run, last epoch's loss). The loader's shuffling generator and its
    dataset's augmentation generator are saved and restored with the rest (``checkpoint.track``).
    """
    meta = checkpoint.track(loader).restore(kind, objects)
    if meta is None:
        return 0, float("nan")
    if meta.get("epochs") != epochs:
        path = checkpoint.files[0]
        raise ValueError(f"{path} was saved by a {meta.get('epochs')}-epoch training, not {epochs}; set the epochs back or delete it to restart that training")
    return int(meta["epoch"]) + 1, float(meta["loss"])
