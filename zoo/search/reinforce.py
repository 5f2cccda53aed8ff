"""REINFORCE: an LSTM controller trained with policy gradient (Zoph & Le, "Neural
Architecture Search with Reinforcement Learning", ICLR 2017; the policy-gradient
estimator is Williams, "Simple statistical gradient-following algorithms for
connectionist reinforcement learning", Machine Learning 1992).

Each told reward ``R`` gives the advantage ``R - b`` against an exponential
moving-average baseline ``b``; every ``batch_size`` tells the controller takes one Adam
step on ``-(mean advantage * log pi(a)) - entropy_weight * H(pi)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from zoo.search.base import STRATEGIES, check
from zoo.search.controller import ControllerStrategy
from zoo.search.pareto import check_objectives
from zoo.space.base import SearchSpace


@STRATEGIES.register("reinforce")
class Reinforce(ControllerStrategy):
    def __init__(
        self,
        space: SearchSpace,
        budget: int = 100,
        seed: int = 0,
        objectives: Sequence[str] = ("accuracy",),
        lr: float = 0.02,
        hidden: int = 64,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        batch_size: int = 1,
        tanh_constant: float = 0.0,
        temperature: float = 1.0,
        grad_clip: float = 5.0,
        dedup: bool = True,
        max_tries: int = 50,
    ) -> None:
        check(
            isinstance(batch_size, int) and not isinstance(batch_size, bool) and 1 <= batch_size <= budget,
            "batch_size",
            batch_size,
            f"an integer in [1, budget={budget}]",
        )
        super().__init__(
            space,
            budget,
            seed,
            check_objectives(objectives, "reinforce", multi_ok=False),
            lr,
            hidden,
            baseline_decay,
            entropy_weight,
            tanh_constant,
            temperature,
            grad_clip,
            dedup,
            max_tries,
        )
        self.batch_size = batch_size
        self.batch: list[tuple[list[int], float]] = []

    def _learn(self, x: list[int], advantage: float, behaviour_logp: float | None) -> None:
        self.batch.append((x, advantage))
        if len(self.batch) < self.batch_size:
            return
        choices = torch.tensor([b[0] for b in self.batch])
        adv = torch.tensor([b[1] for b in self.batch], dtype=torch.float32)
        logp, entropy = self.controller.log_prob(choices)
        self._step(-(adv * logp).mean() - self.entropy_weight * entropy.mean())
        self.batch = []

    def _learner_state(self) -> dict[str, Any]:
        return {"batch": [[x, a] for x, a in self.batch]}

    def _load_learner_state(self, state: dict[str, Any]) -> None:
        self.batch = [(list(x), float(a)) for x, a in state["batch"]]
