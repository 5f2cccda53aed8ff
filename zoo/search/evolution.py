"""Regularized (aging) evolution (Real, Aggarwal, Huang & Le, "Regularized Evolution for
Image Classifier Architecture Search", AAAI 2019).

The population is the ``population_size`` most recently evaluated architectures (the
oldest dies each step, whatever its fitness). A proposal samples ``sample_size`` members,
takes the fittest as parent and mutates ``mutations`` of its decisions. The first
``population_size`` proposals are uniform samples. With several objectives the fitness
within the population is the non-dominated front, then crowding (NSGA-II, Deb et al. 2002).
The population is the tail of the history, so the state is the base class's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.search.base import STRATEGIES, Strategy, check
from zoo.search.pareto import check_objectives
from zoo.search.proposals import fitness, novel, seen_keys


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    def __init__(
        self,
        space: Any,
        budget: int = 100,
        seed: int = 0,
        population_size: int = 10,
        sample_size: int = 3,
        mutations: int = 1,
        objectives: Sequence[str] = ("accuracy",),
    ) -> None:
        super().__init__(space, budget, seed, check_objectives(objectives, "evolution"))
        check(
            isinstance(population_size, int) and 2 <= population_size <= budget,
            "population_size",
            population_size,
            f"an integer from 2 to search.budget ({budget})",
        )
        check(
            isinstance(sample_size, int) and 1 <= sample_size <= population_size,
            "sample_size",
            sample_size,
            f"an integer from 1 to search.population_size ({population_size})",
        )
        check(
            isinstance(mutations, int) and 1 <= mutations <= len(space.cardinalities()),
            "mutations",
            mutations,
            f"an integer from 1 to the number of decisions ({len(space.cardinalities())})",
        )
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutations = mutations

    def _propose(self) -> Any:
        seen = seen_keys(self)
        if not self.history or self.n_told + len(self.pending) < self.population_size:
            return novel(self, lambda: self.space.sample(self.rng), seen)
        population = self.history[-self.population_size :]
        fit = fitness([r for _, r in population], self.objectives)
        picks = self.rng.choice(len(population), size=min(self.sample_size, len(population)), replace=False)
        parent = population[max(picks, key=lambda i: (fit[i], -i))][0]
        return novel(self, lambda: self.space.mutate(parent, self.rng, self.mutations), seen)
