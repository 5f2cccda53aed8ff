"""Random search: uniform samples of the space (Bergstra & Bengio, JMLR 2012; as a NAS
baseline, Li & Talwalkar, "Random Search and Reproducibility for NAS", UAI 2019)."""
from __future__ import annotations

from typing import Any

from zoo.search.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    def _propose(self) -> Any:
        return self.space.sample(self.rng)
