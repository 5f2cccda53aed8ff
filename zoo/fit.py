"""One training loop (:func:`fit`) that every task's training, estimation and fine-tuning share.

A task chooses the optimiser and the learning-rate schedule through small factories and
passes its loss; :func:`fit` does the rest the same way for all: batches of any structure
(tensors, dicts, sequences, dataclasses) moved to the device in one place, the forward pass and
loss under bf16 autocast with ``amp`` (:func:`zoo.device.autocast`, CUDA only), gradient
clipping, a progress bar with the running loss, and an epoch checkpoint
(:class:`zoo.runners.checkpoint.EpochCheckpoint`) of the model, optimiser, stateful schedule
and random states after every epoch, so a killed training resumes and ends where an
uninterrupted one would.

Schedules: :func:`cosine_per_epoch`, SGD with momentum and a cosine rate set at each epoch
(Loshchilov & Hutter, SGDR, ICLR 2017), the DARTS evaluation protocol (Liu et al., ICLR
2019); :func:`warmup_cosine_per_step`, a linear warm-up over the first epoch and a cosine decay
per step, for AdamW (Loshchilov & Hutter, ICLR 2019), which trains detectors much further than
SGD on the few hundred steps a CPU budget allows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from zoo.device import autocast, model_device

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def sgd(lr: float, momentum: float = 0.9, weight_decay: float = 3e-4) -> OptimizerFactory:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def adamw(lr: float, weight_decay: float = 1e-4) -> OptimizerFactory:
    return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


class Schedule(Protocol):
    """Sets the learning rate; ``state`` is what a checkpoint must keep (``None``: a function of the epoch)."""

    state: Any

    def start_epoch(self, epoch: int) -> None: ...

    def after_step(self) -> None: ...


ScheduleFactory = Callable[[torch.optim.Optimizer, int, int], Schedule]  # (optimizer, epochs, steps per epoch)


class _CosinePerEpoch:
    state = None

    def __init__(self, opt: torch.optim.Optimizer, epochs: int, lr_min: float) -> None:
        self.opt, self.epochs, self.lr_min = opt, epochs, lr_min
        self.lr = [g["lr"] for g in opt.param_groups]

    def start_epoch(self, epoch: int) -> None:
        for g, lr in zip(self.opt.param_groups, self.lr):
            g["lr"] = self.lr_min + 0.5 * (lr - self.lr_min) * (1 + math.cos(math.pi * epoch / self.epochs))

    def after_step(self) -> None:
        pass


class _WarmupCosinePerStep:
    def __init__(self, opt: torch.optim.Optimizer, epochs: int, steps: int) -> None:
        total = max(1, epochs * steps)
        warm = min(steps, total // 4) or 1
        self.state = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
        )

    def start_epoch(self, epoch: int) -> None:
        pass

    def after_step(self) -> None:
        self.state.step()


def cosine_per_epoch(lr_min: float = 0.0) -> ScheduleFactory:
    return lambda opt, epochs, steps: _CosinePerEpoch(opt, epochs, lr_min)


def warmup_cosine_per_step() -> ScheduleFactory:
    return lambda opt, epochs, steps: _WarmupCosinePerStep(opt, epochs, steps)


WeightTraining = Callable[[list[nn.Parameter], int, int], tuple[torch.optim.Optimizer, Schedule]]


def adamw_warmup_training(trainer: Any) -> WeightTraining:
    """``(params, epochs, steps_per_epoch) -> (optimizer, schedule)``: AdamW at ``trainer.lr`` / ``trainer.weight_decay``
    with :func:`warmup_cosine_per_step`: the recipe of :func:`fit_adamw_warmup` for a loop that is not :func:`fit`'s
    (a one-shot strategy's supernet weights, :attr:`zoo.estimate.problem.OneShotProblem.weight_training`)."""

    def make(params: list[nn.Parameter], epochs: int, steps: int) -> tuple[torch.optim.Optimizer, Schedule]:
        opt = adamw(float(trainer.lr), float(trainer.weight_decay))(params)
        return opt, warmup_cosine_per_step()(opt, epochs, steps)

    return make


def to_device(batch: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor in it on ``device`` (tensors, dicts, lists, tuples, dataclasses);
    ``non_blocking``: asynchronous copies from page-locked memory (a pinning DataLoader's batches)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device, non_blocking) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        fields = dataclasses.fields(batch)
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device, non_blocking) for f in fields})
    return batch


def fit(
    model: nn.Module,
    loader: Any,
    epochs: int,
    loss: Callable[[nn.Module, Any], torch.Tensor],
    optimizer: OptimizerFactory,
    schedule: ScheduleFactory,
    grad_clip: float = 5.0,
    device: torch.device | str | None = None,
    before_epoch: Callable[[int], None] | None = None,
    desc: str = "train",
    progress: bool = True,
    checkpoint: Any = None,
    on_epoch: Callable[[int, float], Any] | None = None,
    amp: bool = False,
    history: list[Any] | None = None,
) -> float:
    """Trains ``model`` in place for ``epochs`` over ``loader``; returns the last epoch's mean loss.

    ``loss(model, batch)`` gets the batch already on ``device`` (default: where the model's
    parameters are) and runs under bf16 autocast with ``amp`` (``trainer.amp``; CUDA only).
    ``before_epoch(epoch)`` runs after the rate is set (e.g. drop-path
    growth). ``checkpoint`` (an :class:`~zoo.runners.checkpoint.EpochCheckpoint`) is saved after
    every epoch and, when resuming, training continues after the last saved epoch. ``on_epoch(epoch,
    loss)`` runs after each epoch; what it returns (JSON values; ``None``: nothing) is appended to ``history``,
    which the checkpoint saves and a resume restores, so a per-epoch record (a learning curve) survives a resume.
    """
    device = torch.device(device) if device is not None else model_device(model)
    non_blocking = device.type == "cuda"
    model.to(device)
    opt = optimizer(model.parameters())
    n = len(loader)
    sched = schedule(opt, epochs, n)
    kind = f"{type(opt).__name__} training"
    objects: dict[str, Any] = {"model": model, "optimizer": opt}  # what a checkpoint saves and restores
    if sched.state is not None:
        objects["schedule"] = sched.state
    last, start = float("nan"), 0
    if checkpoint is not None:
        start, last = resume_training(checkpoint, kind, objects, epochs, loader, history)
    bar = tqdm(total=epochs * n, initial=start * n, desc=desc, disable=not progress, leave=False)
    for epoch in range(start, epochs):
        sched.start_epoch(epoch)
        if before_epoch is not None:
            before_epoch(epoch)
        model.train()
        total, seen = 0.0, 0
        for batch in loader:
            batch = to_device(batch, device, non_blocking)
            opt.zero_grad(set_to_none=True)
            with autocast(device, amp):
                value = loss(model, batch)
            value.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.after_step()
            total += float(value.detach())
            seen += 1
            bar.update(1)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        last = total / max(seen, 1)
        entry = on_epoch(epoch, last) if on_epoch is not None else None
        if history is not None and entry is not None:
            history.append(entry)
        if checkpoint is not None:
            meta = {"epoch": epoch, "epochs": epochs, "loss": last}
            if history is not None:
                meta["history"] = list(history)
            checkpoint.save(kind, objects, meta)
    bar.close()
    return last


def resume_training(
    checkpoint: Any, kind: str, objects: dict[str, Any], epochs: int, loader: Any, history: list[Any] | None = None
) -> tuple[int, float]:
    """Restores ``objects`` from ``checkpoint`` when it holds a saved epoch of the same schedule.

    Returns (first epoch to run, last epoch's loss). The loader's shuffling generator and its
    dataset's augmentation generator are saved and restored with the rest (``checkpoint.track``),
    and ``history`` gets back the entries the saved epochs recorded.
    """
    meta = checkpoint.track(loader).restore(kind, objects)
    if meta is None:
        return 0, float("nan")
    if meta.get("epochs") != epochs:
        path = checkpoint.files[0]
        raise ValueError(
            f"{path} was saved by a {meta.get('epochs')}-epoch training, not {epochs}; set the epochs back or delete it to restart that training"
        )
    if history is not None:
        history[:] = list(meta.get("history", []))
    return int(meta["epoch"]) + 1, float(meta["loss"])


def fit_adamw_warmup(
    model: nn.Module,
    loader: Any,
    epochs: int,
    loss: Callable[[nn.Module, Any], torch.Tensor],
    trainer: Any,
    device: torch.device | str | None = None,
    desc: str = "train",
    progress: bool = True,
    checkpoint: Any = None,
    on_epoch: Callable[[int, float], Any] | None = None,
    history: list[Any] | None = None,
) -> float:
    """:func:`fit` with AdamW at ``trainer.lr`` / ``trainer.weight_decay``, a linear warm-up over the first
    epoch and a per-step cosine decay (:func:`warmup_cosine_per_step`), gradients clipped at ``trainer.grad_clip``,
    bf16 autocast with ``trainer.amp``: the dense-prediction tasks' training recipe."""
    return fit(
        model,
        loader,
        epochs,
        loss=loss,
        optimizer=adamw(float(trainer.lr), float(trainer.weight_decay)),
        schedule=warmup_cosine_per_step(),
        grad_clip=float(trainer.grad_clip),
        device=device,
        desc=desc,
        progress=progress,
        checkpoint=checkpoint,
        on_epoch=on_epoch,
        amp=bool(trainer.get("amp", False)),
        history=history,
    )
