"""The strategy interface.

Two kinds of strategy, one registry (:data:`STRATEGIES`):

* :class:`Strategy` (multi-trial): ask/tell. ``ask(n)`` proposes ``n`` genotypes
  (``n > 1`` for parallel workers), ``tell(genotype, result)`` reports a result dict
  whose ``"reward"`` is higher-is-better (extra objectives may sit beside it).
  ``state_dict()`` is plain JSON (RNG state included) and ``load_state_dict`` restores
  it exactly, so a search resumes where it stopped.
* :class:`OneShotStrategy`: trains a weight-sharing supernet given by a task through
  :class:`zoo.estimate.problem.OneShotProblem` and returns a genotype.

Strategies know only :class:`zoo.space.base.SearchSpace`; they never import tasks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoo.config_values import ConfigError  # noqa: F401  (re-exported: strategies raise it)
from zoo.registry import Registry
from zoo.space.base import SearchSpace
from zoo.space.genotype import genotype_key


def check(cond: bool, field: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"search.{field}={value!r} is invalid; allowed: {allowed}")


class Strategy(ABC):
    """Multi-trial ask/tell strategy over a :class:`SearchSpace`.

    Subclasses implement :meth:`_propose` and may override :meth:`_observe`; they keep
    every piece of state they need for proposals in ``self`` and serialise it in
    :meth:`_extra_state` / :meth:`_load_extra_state`.
    """

    kind = "multi_trial"

    def __init__(self, space: SearchSpace, budget: int = 100, seed: int = 0, objectives: Sequence[str] = ("reward",)) -> None:
        check(isinstance(budget, int) and budget > 0, "budget", budget, "a positive integer")
        self.space = space
        self.budget = budget
        self.seed = seed
        self.objectives = list(objectives)
        self.rng = np.random.default_rng(seed)
        self.history: list[tuple[Any, dict[str, Any]]] = []
        self.pending: list[Any] = []

    # ---- public API
    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            g = self._propose()
            self.pending.append(g)  # visible to the next _propose of the same batch
            out.append(g)
        return out

    def tell(self, genotype: Any, result: dict[str, Any]) -> None:
        if "reward" not in result:
            raise ValueError("tell(): result needs a 'reward' entry (higher is better)")
        key = genotype_key(genotype)
        for k, p in enumerate(self.pending):
            if genotype_key(p) == key:
                del self.pending[k]
                break
        self.history.append((genotype, dict(result)))
        self._observe(genotype, result)

    @property
    def n_told(self) -> int:
        return len(self.history)

    @property
    def done(self) -> bool:
        return self.n_told >= self.budget

    def best(self) -> tuple[Any, dict[str, Any]]:
        if not self.history:
            raise RuntimeError("no result told yet")
        return max(self.history, key=lambda h: h[1]["reward"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": type(self).__name__,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "history": [[g.to_json(), r] for g, r in self.history],
            "pending": [g.to_json() for g in self.pending],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != type(self).__name__:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {type(self).__name__!r}")
        self.rng.bit_generator.state = state["rng"]
        self.history = []
        for g, r in state["history"]:
            self.history.append((self.space.genotype_from_json(g), r))
        self.pending = [self.space.genotype_from_json(g) for g in state["pending"]]
        self._load_extra_state(state["extra"])

    # ---- for subclasses
    @abstractmethod
    def _propose(self) -> Any: ...

    def _observe(self, genotype: Any, result: dict[str, Any]) -> None:
        pass

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass


class OneShotStrategy(ABC):
    """A weight-sharing strategy: trains the task's supernet and returns a genotype."""

    kind = "one_shot"
    needs_problem = True  # False for strategies that return a genotype without a supernet
    supernet_kind = "darts"  # the supernet it trains; a task lists the kinds it can build (Task.supernet_kinds)

    def __init__(self, seed: int = 0, **hparams: Any) -> None:
        self.seed = seed

    def check_space(self, space: SearchSpace) -> None:
        """Raises a one-line error before any work when the strategy cannot serve ``space``."""

    @abstractmethod
    def search(self, problem: Any, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        """Runs the search on ``problem`` (a :class:`OneShotProblem`) and returns a genotype."""


STRATEGIES: Registry[type] = Registry("search strategy", "zoo.search")
