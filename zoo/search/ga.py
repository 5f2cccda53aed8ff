"""Genetic algorithm over genotypes (Holland, "Adaptation in Natural and Artificial Systems",
1975; Goldberg, "Genetic Algorithms in Search, Optimization and Machine Learning", 1989),
in the steady-state, elitist form of GENITOR (Whitley, ICGA 1989) as used for NAS by
Xie & Yuille ("Genetic CNN", ICCV 2017).

The population is the ``population_size`` fittest architectures evaluated so far. Each
proposal selects two parents (``selection``: ``tournament`` of ``tournament_size``, or
linear ``rank`` selection), crosses them over with probability ``crossover_prob``
(uniform per decision group, :meth:`SearchSpace.crossover`) and mutates each decision
with probability ``mutation_prob`` (at least one decision when the child would repeat
an evaluated genotype). The first ``population_size`` proposals are uniform samples.
The population is derived from the history, so the state is the base class's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.search.base import STRATEGIES, Strategy, check
from zoo.search.pareto import check_objectives
from zoo.search.proposals import fitness, novel, seen_keys
from zoo.space.genotype import genotype_key


@STRATEGIES.register("ga")
class GeneticAlgorithm(Strategy):
    def __init__(
        self,
        space: Any,
        budget: int = 100,
        seed: int = 0,
        population_size: int = 20,
        selection: str = "tournament",
        tournament_size: int = 3,
        crossover_prob: float = 0.5,
        mutation_prob: float = 0.2,
        objectives: Sequence[str] = ("accuracy",),
    ) -> None:
        super().__init__(space, budget, seed, check_objectives(objectives, "ga"))
        check(
            isinstance(population_size, int) and 2 <= population_size <= budget,
            "population_size",
            population_size,
            f"an integer from 2 to search.budget ({budget})",
        )
        check(selection in ("tournament", "rank"), "selection", selection, "tournament, rank")
        check(
            isinstance(tournament_size, int) and 1 <= tournament_size <= population_size,
            "tournament_size",
            tournament_size,
            f"an integer from 1 to search.population_size ({population_size})",
        )
        check(isinstance(crossover_prob, (int, float)) and 0 <= crossover_prob <= 1, "crossover_prob", crossover_prob, "a number in [0, 1]")
        check(isinstance(mutation_prob, (int, float)) and 0 <= mutation_prob <= 1, "mutation_prob", mutation_prob, "a number in [0, 1]")
        self.population_size = population_size
        self.selection = selection
        self.tournament_size = tournament_size
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = float(mutation_prob)

    def _select(self, fit: np.ndarray) -> int:
        n = len(fit)
        if self.selection == "tournament":
            picks = self.rng.choice(n, size=min(self.tournament_size, n), replace=False)
            return int(max(picks, key=lambda i: (fit[i], -i)))
        order = np.argsort(-fit, kind="stable")  # linear ranking: the best has weight n, the worst 1
        w = np.arange(n, 0, -1, dtype=float)
        return int(order[self.rng.choice(n, p=w / w.sum())])

    def _child(self, population: list[Any], fit: np.ndarray, seen: set[str]) -> Any:
        a = population[self._select(fit)]
        child = a
        if self.rng.random() < self.crossover_prob:
            child = self.space.crossover(a, population[self._select(fit)], self.rng)
        x = self.space.encode(child)
        card = self.space.cardinalities()
        for k, c in enumerate(card):
            if c > 1 and self.rng.random() < self.mutation_prob:
                x[k] = int((x[k] + self.rng.integers(1, c)) % c)
        child = self.space.decode(x)
        if genotype_key(child) in seen:
            child = self.space.mutate(child, self.rng, 1)
        return child

    def _propose(self) -> Any:
        seen = seen_keys(self)
        if not self.history or self.n_told + len(self.pending) < self.population_size:
            return novel(self, lambda: self.space.sample(self.rng), seen)
        uniq: dict[str, tuple[Any, dict[str, Any]]] = {}
        for g, r in self.history:
            uniq.setdefault(genotype_key(g), (g, r))
        items = list(uniq.values())
        fit_all = fitness([r for _, r in items], self.objectives)
        top = np.argsort(-fit_all, kind="stable")[: self.population_size]
        population = [items[i][0] for i in top]
        fit = fit_all[top]
        return novel(self, lambda: self._child(population, fit, seen), seen)
