"""PC-DARTS: partially-connected DARTS (Xu, Xie, Zhang, Chen, Qi, Tian & Xiong, "PC-DARTS:
Partial Channel Connections for Memory-Efficient Architecture Search", ICLR 2020).

A collapse-resistant DARTS variant: the supernet sends only ``1 / partial_channels`` of each
edge's channels through the mixed op (the rest bypass it, then channels are shuffled) and
weighs each node's incoming edges with learned, softmax-normalised ``beta``; the genotype
is derived from ``softmax(alpha) * softmax(beta)``. The channel sampling regularises the
op choice against the parameter-free ops that make DARTS collapse, and edge normalisation
keeps the edge selection stable across the sampling. The bi-level optimisation is that of
:class:`zoo.search.darts.DARTS` (first order by default, as in the paper); the supernet is
the task's ``pc_darts`` supernet (:class:`zoo.space.pc_supernet.PCSuperNet`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from zoo.estimate.problem import OneShotProblem
from zoo.search.base import STRATEGIES, ConfigError, check
from zoo.search.darts import DARTS


@STRATEGIES.register("pc_darts")
class PCDARTS(DARTS):
    supernet_kind = "pc_darts"

    def __init__(
        self,
        seed: int = 0,
        epochs: int = 10,
        partial_channels: int = 4,
        order: int = 1,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        arch_lr: float = 6e-4,
        arch_weight_decay: float = 1e-3,
        unrolled_lr: float | None = None,
        warmup_epochs: int = 0,
        cost_weight: float = 0.3,
        progress: bool = True,
    ) -> None:
        check(
            isinstance(partial_channels, int) and not isinstance(partial_channels, bool) and partial_channels >= 1,
            "partial_channels",
            partial_channels,
            "a positive integer dividing task.supernet.init_channels (the paper uses 4)",
        )
        super().__init__(
            seed=seed,
            epochs=epochs,
            order=order,
            lr=lr,
            lr_min=lr_min,
            momentum=momentum,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            arch_lr=arch_lr,
            arch_weight_decay=arch_weight_decay,
            unrolled_lr=unrolled_lr,
            warmup_epochs=warmup_epochs,
            cost_weight=cost_weight,
            progress=progress,
        )
        self.partial_channels = partial_channels

    def search(self, problem: OneShotProblem, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        try:
            net = problem.build_supernet("pc_darts", partial_channels=self.partial_channels)
        except ValueError as e:
            if "partial_channels" not in str(e):
                raise
            raise ConfigError(f"search.partial_channels={self.partial_channels} is invalid: {e}") from None
        return super().search(dataclasses.replace(problem, supernet=net), log)
