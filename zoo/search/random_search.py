"""Random search: uniform samples of the space (Bergstra & Bengio, JMLR 2012; as a NAS
baseline, Li & Talwalkar, "Random Search and Reproducibility for NAS", UAI 2019)."""

from __future__ import annotations

from typing import Any

from zoo.search.base import STRATEGIES, Strategy
from zoo.space.genotype import genotype_key

MAX_TRIES = 100


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform samples without repeats: a cell already asked is drawn again (up to
    ``MAX_TRIES`` times, after which a repeat is allowed, as in a space smaller than the budget),
    so no query of the budget is spent on an architecture whose result is known."""

    def _propose(self) -> Any:
        seen = {genotype_key(g) for g, _ in self.history} | {genotype_key(g) for g in self.pending}
        for _ in range(MAX_TRIES):
            g = self.space.sample(self.rng)
            if genotype_key(g) not in seen:
                return g
        return g
