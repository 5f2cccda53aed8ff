"""CMA-ES over a continuous encoding of the architecture (Hansen & Ostermeier, "Completely
Derandomized Self-Adaptation in Evolution Strategies", Evolutionary Computation 2001;
Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772), through the ``cma``
package.

Encoding: one real per option of every decision; a point decodes to the genotype whose
decision ``k`` is the argmax of its block of reals. Fitness is the negated reward (the
ES minimises). Several points of a generation often decode to the same genotype: a
genotype already evaluated gets its known reward without spending budget, so only new
genotypes are proposed. When more proposals are asked than the current generation can
give (its other points wait for results), the extra ones are mutations of the best
genotype so far, told to the history but not to the ES.

The ES draws its normal samples from its own generator, and its state is the list of
generations it was told; ``load_state_dict`` rebuilds the ES by replaying them, which
reproduces it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.search.base import STRATEGIES, Strategy, check
from zoo.search.pareto import check_objectives
from zoo.search.proposals import novel, seen_keys, single_thread_blas
from zoo.space.genotype import genotype_key


@STRATEGIES.register("es")
class CMAES(Strategy):
    def __init__(
        self,
        space: Any,
        budget: int = 100,
        seed: int = 0,
        popsize: int | None = None,
        sigma0: float = 0.5,
        max_idle_generations: int = 30,
        objectives: Sequence[str] = ("accuracy",),
    ) -> None:
        super().__init__(space, budget, seed, check_objectives(objectives, "es", multi_ok=False))
        check(
            popsize is None or (isinstance(popsize, int) and 2 <= popsize), "popsize", popsize, "null (the ES default) or an integer >= 2"
        )
        check(isinstance(sigma0, (int, float)) and sigma0 > 0, "sigma0", sigma0, "a number > 0")
        check(
            isinstance(max_idle_generations, int) and max_idle_generations >= 1,
            "max_idle_generations",
            max_idle_generations,
            "an integer >= 1",
        )
        import cma  # noqa: F401  (fail here, before work, if the package is missing)

        self.popsize = popsize
        self.sigma0 = float(sigma0)
        self.max_idle_generations = max_idle_generations
        self.card = space.cardinalities()
        self.dim = int(sum(self.card))
        self._reset()

    # ---- the ES and its replayable state
    def _reset(self) -> None:
        import cma

        self._normal = np.random.default_rng([self.seed, 0x0E5])
        x0 = np.random.default_rng([self.seed, 0x0E6]).normal(0.0, 0.01, self.dim)
        opts = {
            "randn": lambda *shape: self._normal.standard_normal(shape),
            "seed": float("nan"),
            "verbose": -9,
            "verb_log": 0,
            "verb_disp": 0,
            "CMA_mirrors": 0,
            "tolflatfitness": 10**9,
            "tolfun": 0,
            "tolx": 0,
            "tolstagnation": 10**9,
        }
        if self.popsize is not None:
            opts["popsize"] = self.popsize
        self.es = cma.CMAEvolutionStrategy(x0, self.sigma0, opts)
        self.generations: list[list[list[Any]]] = []  # told generations: [points, fitnesses]
        self._new_generation()

    def _new_generation(self) -> None:
        with single_thread_blas():
            pts = self.es.ask()
        # per point: [x, key or None, fitness or None]
        self.gen: list[list[Any]] = [[[float(v) for v in p], None, None] for p in pts]

    def _decode(self, x: Sequence[float]) -> Any:
        out, off = [], 0
        for c in self.card:
            out.append(int(np.argmax(x[off : off + c])))
            off += c
        return self.space.decode(out)

    def _known(self) -> dict[str, float]:
        return {genotype_key(g): -float(r["reward"]) for g, r in self.history}

    def _tell_if_complete(self) -> bool:
        if any(f is None for _, _, f in self.gen):
            return False
        X = [np.array(x) for x, _, _ in self.gen]
        F = [float(f) for _, _, f in self.gen]
        with single_thread_blas():
            self.es.tell(X, F)
        self.generations.append([[x for x, _, _ in self.gen], F])
        self._new_generation()
        return True

    # ---- ask / tell
    def _propose(self) -> Any:
        seen = seen_keys(self)
        known = self._known()
        idle = 0
        while idle < self.max_idle_generations:
            for p in self.gen:
                if p[1] is not None:
                    continue
                g = self._decode(p[0])
                p[1] = genotype_key(g)
                if p[1] in known:
                    p[2] = known[p[1]]
                elif p[1] not in seen:
                    return g
                # else: another point of this batch proposed the same genotype; wait for its result
            if not self._tell_if_complete():
                break  # points wait for pending results: fall back below
            idle += 1
        best = self.best()[0] if self.successes() else self.space.sample(self.rng)
        return novel(self, lambda: self.space.mutate(best, self.rng, 1), seen)

    def _observe(self, genotype: Any, result: dict[str, Any]) -> None:
        key = genotype_key(genotype)
        for p in self.gen:
            if p[1] == key and p[2] is None:
                p[2] = -float(result["reward"])
        self._tell_if_complete()

    def _extra_state(self) -> dict[str, Any]:
        return {"generations": self.generations, "current": self.gen}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._reset()
        for points, F in state["generations"]:
            if not np.allclose([x for x, _, _ in self.gen], points, rtol=0, atol=1e-12):
                raise ValueError("es: saved generations do not replay (different seed or cma version)")
            with single_thread_blas():
                self.es.tell([np.array(x) for x in points], [float(f) for f in F])
            self.generations.append([points, [float(f) for f in F]])
            self._new_generation()
        self.gen = [[list(x), k, f] for x, k, f in state["current"]]
