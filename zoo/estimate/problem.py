"""What a task hands a one-shot strategy: the supernet, its data and its loss.

This is the only thing one-shot strategies and tasks share, so neither imports the other.
:class:`Replicas` is how a strategy's training is shared among processes: here alone (one
process, every method the identity); under ``torchrun``, several copies of the search in
lockstep (:class:`zoo.runners.distributed.DistributedReplicas`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zoo.device import AutocastLoss, model_device


class Replicas:
    """The copies of a one-shot search that train one supernet together: this one alone.

    A strategy routes every step that replicas must share through these methods, so the same
    code runs in one process (this class: each method leaves its argument as it is) and under
    ``torchrun`` (:class:`zoo.runners.distributed.DistributedReplicas`, where every replica
    holds identical weights, architecture parameters and random states at each step).
    """

    rank = 0
    size = 1

    @property
    def is_main(self) -> bool:
        """Whether this replica is the one that writes (rank 0)."""
        return self.rank == 0

    def shard(self, batches: Iterable[Any]) -> Iterable[Any]:
        """This replica's share of ``batches`` (re-iterable, with ``len``)."""
        return batches

    def wrap(self, net: nn.Module, ignore: Sequence[nn.Parameter] = (), find_unused: bool = False) -> nn.Module:
        """``net`` as its weights' training steps call it; ``ignore`` (the architecture parameters) are
        averaged by :meth:`average_grads` instead; ``find_unused`` when a step leaves parameters unused."""
        return net

    def sync_weight_grads(self, params: Iterable[nn.Parameter]) -> None:
        """After a backward through :meth:`wrap`'s module: the weights' gradients as the mean over replicas."""

    def average_grads(self, params: Iterable[torch.Tensor]) -> None:
        """Replaces each ``.grad`` with its mean over replicas (parameters without a gradient are skipped)."""

    def average_(self, tensors: Iterable[torch.Tensor | None]) -> None:
        """Replaces each tensor, in place, with its mean over replicas (``None`` entries are skipped)."""

    def sync_buffers(self, net: nn.Module) -> None:
        """Makes ``net``'s floating-point buffers (batch-norm statistics) the mean over replicas."""

    def decide(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every replica (a decision all must take together, e.g. to stop)."""
        return flag

    def spread(self, fn: Callable[[Any], float], items: Sequence[Any]) -> list[float]:
        """``[fn(x) for x in items]`` on every replica, each replica computing a share of them."""
        return [float(fn(x)) for x in items]


@dataclass
class OneShotProblem:
    """A weight-sharing search problem.

    Attributes:
        supernet: module with ``arch_parameters()``, ``weight_parameters()`` and ``genotype()``.
        train_loader: batches for the weights (an iterable, re-iterated each epoch).
        valid_loader: batches for the architecture parameters.
        loss: ``loss(model, batch) -> scalar tensor``.
        score: ``score(model, loader) -> float``, higher is better (e.g. accuracy).
        device: where to train (default: where the supernet's parameters are).
        make_supernet: optional ``make_supernet(kind, **kwargs) -> nn.Module``, a fresh supernet
            of another kind ("darts", "pc_darts", "single_path") built with the task's
            configuration; see :meth:`build_supernet`.
        space: the search space the supernets relax (for strategies that sample genotypes).
        checkpoint: where the strategy saves and restores itself at epoch boundaries (set by the
            runner: a :class:`zoo.runners.checkpoint.EpochCheckpoint`, or ``None`` for no checkpoints).
        distributed: the :class:`Replicas` training this supernet together (set by the runner under
            ``torchrun``; one process by default).
        amp: ``loss`` runs under bf16 autocast (``trainer.amp``; CUDA only): the task asks for it,
            the problem wraps ``loss`` (:class:`zoo.device.AutocastLoss`), so strategies need no code for it.
        cost: ``cost(supernet) -> (expected, reference)`` tensors or ``None``, set by the runner when the run has
            constraints: the supernet's expected size under its architecture weights (differentiable in them) and
            the same under equal weights; ``None`` where the supernet offers no cost model. ``darts`` and
            ``pc_darts`` add ``search.cost_weight * expected / reference`` to the architecture loss.
        feasible: ``feasible(genotype) -> bool``, set by the runner when the run has constraints: whether some
            width of the genotype's final network meets them (:func:`zoo.constraints.fit_width`); strategies that
            pick among sampled genotypes (``spos``'s evolution) keep to the feasible ones. ``None``: all are.
        weight_training: ``weight_training(params, epochs, steps_per_epoch) -> (optimizer, schedule)``, the task's own
            optimiser and learning-rate schedule (a :class:`zoo.fit.Schedule`) for the supernet's weights, for tasks whose
            models do not train with the strategies' SGD recipe (a Transformer needs Adam with warm-up). ``None``: the
            strategy's own optimiser (``search.lr`` and its cosine schedule).
    """

    supernet: nn.Module
    train_loader: Iterable[Any]
    valid_loader: Iterable[Any]
    loss: Callable[[nn.Module, Any], torch.Tensor]
    score: Callable[[nn.Module, Iterable[Any]], float]
    device: torch.device | None = None
    make_supernet: Callable[..., nn.Module] | None = None
    space: Any = None
    checkpoint: Any = None
    distributed: Replicas = field(default_factory=Replicas)
    amp: bool = False
    cost: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor] | None] | None = None
    feasible: Callable[[Any], bool] | None = None
    weight_training: Callable[[list[nn.Parameter], int, int], tuple[torch.optim.Optimizer, Any]] | None = None

    def __post_init__(self) -> None:
        if self.device is None:
            self.device = model_device(self.supernet)
        if self.amp and not isinstance(self.loss, AutocastLoss):  # dataclasses.replace() runs this again: wrap once
            self.loss = AutocastLoss(self.loss, self.device)

    def build_supernet(self, kind: str, **kwargs: Any) -> nn.Module:
        """A fresh supernet of ``kind`` from the task; a one-line ``ValueError`` if the task has none."""
        if self.make_supernet is None:
            raise ValueError(f"this task offers no {kind!r} supernet (its one-shot problem has no make_supernet)")
        return self.make_supernet(kind, **kwargs)
