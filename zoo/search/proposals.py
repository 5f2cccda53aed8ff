"""Helpers the multi-trial strategies share: novelty (never re-propose a genotype that was
evaluated or is being evaluated) and a scalar fitness per history entry that also covers
multi-objective search (non-dominated rank, then crowding; NSGA-II, Deb et al. 2002)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from zoo.search.pareto import crowding_distance, is_multi, non_dominated_sort, objective_matrix
from zoo.space.genotype import genotype_key

_CONTROLLER: Any = None


def single_thread_blas() -> AbstractContextManager[Any]:
    """Limits BLAS to one thread: a surrogate's small matrices only lose time to thread hand-offs."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def seen_keys(strategy: Any) -> set[str]:
    """Keys of every genotype told or pending."""
    return {genotype_key(g) for g, _ in strategy.history} | {genotype_key(g) for g in strategy.pending}


def novel(
    strategy: Any,
    make: Callable[[], Any],
    seen: set[str] | None = None,
    tries: int = 50,
) -> Any:
    """Calls ``make()`` until it returns an unseen genotype; falls back to random samples.

    Returns a seen genotype only when the space appears exhausted (then re-evaluating
    one is unavoidable; the runner answers it from its log).
    """
    seen = seen_keys(strategy) if seen is None else seen
    g = None
    for _ in range(tries):
        g = make()
        if genotype_key(g) not in seen:
            return g
    for _ in range(20 * tries):
        g = strategy.space.sample(strategy.rng)
        if genotype_key(g) not in seen:
            return g
    return g


def fitness(results: Sequence[dict[str, Any]], objectives: Sequence[str]) -> np.ndarray:
    """Larger-is-better scalar per result: the reward, or for several objectives
    ``-front_rank`` plus a crowding bonus below 1 computed within ``results``."""
    if not is_multi(objectives):
        return np.array([float(r["reward"]) for r in results])
    F = objective_matrix(results, objectives)
    rank = non_dominated_sort(F)
    out = -rank.astype(float)
    for k in np.unique(rank):
        idx = np.flatnonzero(rank == k)
        cd = crowding_distance(F[idx])
        m = F.shape[1]  # finite crowding distances are at most m, so ranks never overlap
        out[idx] += np.where(np.isinf(cd), m + 0.5, np.minimum(cd, m)) / (m + 1.0)
    return out
