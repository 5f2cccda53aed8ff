"""Regularized (aging) evolution (Real, Aggarwal, Huang & Le, "Regularized Evolution for
Image Classifier Architecture Search", AAAI 2019).

The population is the ``population_size`` most recently evaluated architectures (the
oldest dies each step, whatever its fitness). A proposal samples ``sample_size`` members,
takes the fittest as parent and mutates ``mutations`` of its decisions. The first
``population_size`` proposals are uniform samples. With several objectives the fitness
within the population is the non-dominated front, then crowding (NSGA-II, Deb et al. 2002).
The population is the tail of the history, so the state is the base class's.

``seed_arch`` warm-starts the search from a known architecture, as the Evolved Transformer
(So, Liang & Le, ICML 2019) seeded its population with the Transformer: the first proposal is
that architecture and the rest of the first population are its mutations, instead of uniform samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.search.base import STRATEGIES, ConfigError, Strategy, check
from zoo.search.pareto import check_objectives
from zoo.search.proposals import fitness, novel, seen_keys
from zoo.space.genotype import GenotypeError, genotype_key


def seeded_architecture(space: Any, seed_arch: str) -> Any:
    """The genotype ``search.seed_arch`` names (as ``search.arch`` of ``search=fixed`` would), checked against ``space``."""
    from zoo.search.fixed import resolve_arch

    try:
        genotype = resolve_arch(seed_arch)
        if getattr(genotype, "space", None) != space.name:
            raise GenotypeError(f"it is a {getattr(genotype, 'space', '?')!r} genotype, not one of space {space.name!r}")
        space.encode(genotype)
    except (ConfigError, GenotypeError) as e:
        text = str(e).replace("search.arch", "search.seed_arch")
        raise ConfigError(text if text.startswith("search.seed_arch") else f"search.seed_arch={seed_arch}: {text}") from None
    return genotype


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
        seed_arch: str | None = None,
    ) -> None:
        super().__init__(space, budget, seed, check_objectives(objectives, "evolution"))
        self.seed_genotype = seeded_architecture(space, seed_arch) if seed_arch else None
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
            if self.seed_genotype is None:
                return novel(self, lambda: self.space.sample(self.rng), seen)
            if genotype_key(self.seed_genotype) not in seen:
                return self.seed_genotype
            return novel(self, lambda: self.space.mutate(self.seed_genotype, self.rng, self.mutations), seen)
        population = self.history[-self.population_size :]
        fit = fitness([r for _, r in population], self.objectives)
        picks = self.rng.choice(len(population), size=min(self.sample_size, len(population)), replace=False)
        parent = population[max(picks, key=lambda i: (fit[i], -i))][0]
        return novel(self, lambda: self.space.mutate(parent, self.rng, self.mutations), seen)
