"""PPO: the LSTM controller of Zoph & Le (ICLR 2017) trained with the clipped surrogate
objective of Schulman et al., "Proximal Policy Optimization Algorithms" (arXiv 2017),
as Zoph et al. did for NASNet ("Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018).

The last ``buffer_size`` told samples are kept with their advantage (reward minus an
exponential moving-average baseline) and the log-probability the sampling policy gave
them. Every ``update_every`` tells the controller takes ``epochs`` full-batch Adam steps
on ``-mean(min(r A, clip(r, 1 - clip, 1 + clip) A)) - entropy_weight * H``, where ``r``
is the ratio of the current to the sampling policy's probability, so old samples stop
pushing once the policy has moved ``clip`` away from the one that drew them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from zoo.search.base import STRATEGIES, check
from zoo.search.controller import ControllerStrategy
from zoo.search.pareto import check_objectives
from zoo.space.base import SearchSpace


@STRATEGIES.register("ppo")
class PPO(ControllerStrategy):
    def __init__(
        self,
        space: SearchSpace,
        budget: int = 100,
        seed: int = 0,
        objectives: Sequence[str] = ("accuracy",),
        lr: float = 0.01,
        hidden: int = 64,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        clip: float = 0.2,
        epochs: int = 4,
        buffer_size: int = 16,
        update_every: int = 4,
        tanh_constant: float = 0.0,
        temperature: float = 1.0,
        grad_clip: float = 5.0,
        dedup: bool = True,
        max_tries: int = 50,
    ) -> None:
        def integer(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        check(isinstance(clip, (int, float)) and 0 < clip < 1, "clip", clip, "a number in (0, 1)")
        check(integer(epochs) and epochs >= 1, "epochs", epochs, "an integer >= 1")
        check(integer(buffer_size) and buffer_size >= 1, "buffer_size", buffer_size, "an integer >= 1")
        check(
            integer(update_every) and 1 <= update_every <= buffer_size,
            "update_every",
            update_every,
            f"an integer in [1, buffer_size={buffer_size}]",
        )
        super().__init__(
            space,
            budget,
            seed,
            check_objectives(objectives, "ppo", multi_ok=False),
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
        self.clip = float(clip)
        self.epochs = epochs
        self.buffer_size = buffer_size
        self.update_every = update_every
        self.buffer: list[tuple[list[int], float, float]] = []
        self.since_update = 0

    def _learn(self, x: list[int], advantage: float, behaviour_logp: float | None) -> None:
        if behaviour_logp is None:  # told a genotype this strategy did not ask: its own policy is the sampler
            with torch.no_grad():
                behaviour_logp = float(self.controller.log_prob(torch.tensor([x]))[0][0])
        self.buffer = (self.buffer + [(x, advantage, behaviour_logp)])[-self.buffer_size :]
        self.since_update += 1
        if self.since_update < self.update_every:
            return
        self.since_update = 0
        choices = torch.tensor([b[0] for b in self.buffer])
        adv = torch.tensor([b[1] for b in self.buffer], dtype=torch.float32)
        old = torch.tensor([b[2] for b in self.buffer], dtype=torch.float32)
        for _ in range(self.epochs):
            logp, entropy = self.controller.log_prob(choices)
            ratio = torch.exp(logp - old)
            surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * adv)
            self._step(-surrogate.mean() - self.entropy_weight * entropy.mean())

    def _learner_state(self) -> dict[str, Any]:
        return {"buffer": [[x, a, lp] for x, a, lp in self.buffer], "since_update": self.since_update}

    def _load_learner_state(self, state: dict[str, Any]) -> None:
        self.buffer = [(list(x), float(a), float(lp)) for x, a, lp in state["buffer"]]
        self.since_update = int(state["since_update"])
