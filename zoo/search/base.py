"""The strategy interface.

Two kinds of strategy, one registry (:data:`STRATEGIES`):

* :class:`Strategy` (multi-trial): ask/tell. ``ask(n)`` proposes ``n`` genotypes
  (``n > 1`` for parallel workers), ``tell(genotype, result)`` reports a result dict
  whose ``"reward"`` is higher-is-better (extra objectives may sit beside it).
  ``state_dict()`` is plain JSON (RNG state included) and ``load_state_dict`` restores
  it exactly, so a search resumes where it stopped. The runner saves the state after every
  tell, so a kill in the middle of a batch leaves candidates that were asked but never told
  (``pending``): after ``load_state_dict`` the first asks return exactly those again, in
  their order (and only those), so the resumed search tells the same sequence as an
  uninterrupted one instead of drawing new candidates from a state that has moved on.
* :class:`OneShotStrategy`: trains a weight-sharing supernet given by a task through
  :class:`zoo.estimate.problem.OneShotProblem` and returns a genotype.

Strategies know only :class:`zoo.space.base.SearchSpace`; they never import tasks.
"""

from __future__ import annotations

import time
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
    stopped_by: str | None = None  # set by the runner loop when something other than the budget ended the search ("time_budget")

    def __init__(self, space: SearchSpace, budget: int = 100, seed: int = 0, objectives: Sequence[str] = ("reward",)) -> None:
        check(isinstance(budget, int) and budget > 0, "budget", budget, "a positive integer")
        self.space = space
        self.budget = budget
        self.seed = seed
        self.objectives = list(objectives)
        self.rng = np.random.default_rng(seed)
        self.history: list[tuple[Any, dict[str, Any]]] = []
        self.pending: list[Any] = []
        self._reserve: list[Any] = []  # in flight when the state was saved: re-asked first after a resume

    # ---- public API
    def ask(self, n: int = 1) -> list[Any]:
        if self._reserve:
            out, self._reserve = self._reserve[:n], self._reserve[n:]
            self.pending.extend(out)
            return out
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

    def successes(self) -> list[tuple[Any, dict[str, Any]]]:
        """The history without failed or infeasible candidates (``"failed"`` / ``"infeasible": true``, told a stand-in reward)."""
        return [h for h in self.history if not h[1].get("failed") and not h[1].get("infeasible")]

    def best(self) -> tuple[Any, dict[str, Any]]:
        """The best candidate told, failed and infeasible ones aside."""
        ok = self.successes()
        if not ok:
            raise RuntimeError("no successful result told yet")
        return max(ok, key=lambda h: h[1]["reward"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": type(self).__name__,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "history": [[g.to_json(), r] for g, r in self.history],
            "pending": [g.to_json() for g in self.pending],
            "reserve": [g.to_json() for g in self._reserve],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != type(self).__name__:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {type(self).__name__!r}")
        self.rng.bit_generator.state = state["rng"]
        self.history = []
        for g, r in state["history"]:
            self.history.append((self.space.genotype_from_json(g), r))
        self._reserve = [self.space.genotype_from_json(g) for g in [*state.get("reserve", []), *state["pending"]]]
        self.pending = []
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
    deadline: float | None = None  # a time.time() value (search.time_budget, set by the pipeline): stop after the epoch in progress
    stopped_by: str | None = None  # "time_budget" when the deadline ended the search early

    def __init__(self, seed: int = 0, **hparams: Any) -> None:
        self.seed = seed

    def check_space(self, space: SearchSpace) -> None:
        """Raises a one-line error before any work when the strategy cannot serve ``space``."""

    def stop_for_time(self, replicas: Any, log: Callable[[dict[str, Any]], None] | None, **where: Any) -> bool:
        """Whether :attr:`deadline` has passed, to stop at this boundary (``where``: e.g. ``epoch=3``, logged
        as ``{"stopped": "time_budget", **where}``). Under ``torchrun`` rank 0's clock decides for every
        replica (``replicas.decide``), so they stop together."""
        if self.deadline is None or not replicas.decide(time.time() >= self.deadline):
            return False
        self.stopped_by = "time_budget"
        if log is not None:
            log({"stopped": "time_budget", **where})
        return True

    @abstractmethod
    def search(self, problem: Any, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        """Runs the search on ``problem`` (a :class:`OneShotProblem`) and returns a genotype."""


STRATEGIES: Registry[type] = Registry("search strategy", "zoo.search")
