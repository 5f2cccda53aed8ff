"""The Bayesian-optimisation loop the ``bo_*`` strategies share (Jones, Schonlau & Welch,
"Efficient Global Optimization of Expensive Black-Box Functions", J. Global Optim. 1998;
for NAS e.g. White et al., "BANANAS", AAAI 2021).

Each proposal fits a surrogate (given by the subclass) to the one-hot encoded history,
scores a candidate pool with expected improvement (EI) and proposes the best candidate.
The pool holds ``pool_size`` uniform samples plus every one-decision neighbour of the
``local_parents`` best architectures, all not evaluated or pending yet. The first
``n_init`` proposals are uniform samples.

* Batch asks: pending candidates enter the surrogate with the value it predicts for them
  ("kriging believer", Ginsbourger, Le Riche & Carraro 2010), so a batch spreads out.
* Several objectives: each proposal draws a weight vector from the simplex and fits the
  surrogate to ParEGO's augmented Chebyshev scalarisation (Knowles, IEEE TEVC 2006).

The surrogate is refit from the history on every proposal, so the base class's state
(history, pending, RNG) is the whole state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import ndtr

from zoo.search.base import Strategy, check
from zoo.search.pareto import check_objectives, is_multi, objective_matrix, parego_scalarize
from zoo.search.proposals import single_thread_blas

SQRT5 = np.sqrt(5.0)


def expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI of maximisation; ``sd == 0`` gives the plain improvement."""
    sd = np.maximum(sd, 1e-12)
    z = (mu - best - xi) / sd
    return (mu - best - xi) * ndtr(z) + sd * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def one_hot(X: np.ndarray, card: Sequence[int]) -> np.ndarray:
    """(n, d) decision matrix -> (n, sum(card)) one-hot matrix."""
    offsets = np.concatenate([[0], np.cumsum(card)[:-1]]).astype(int)
    out = np.zeros((len(X), int(sum(card))))
    if len(X):
        out[np.arange(len(X))[:, None], offsets[None, :] + X] = 1.0
    return out


class GaussianProcess:
    """Exact GP regression with an isotropic Matern-5/2 kernel (Rasmussen & Williams 2006).

    Hyper-parameters (length scale, noise ratio) are chosen on a small grid by the log
    marginal likelihood with the signal variance profiled out (closed form), which is
    deterministic and takes well under a millisecond per grid point at 100 observations.
    """

    def __init__(
        self, lengthscales: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0), noises: Sequence[float] = (1e-4, 1e-2, 1e-1, 0.3)
    ) -> None:
        self.lengthscales = tuple(lengthscales)
        self.noises = tuple(noises)

    @staticmethod
    def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
        return np.maximum(d, 0.0)

    @staticmethod
    def _matern(d2: np.ndarray, ls: float) -> np.ndarray:
        r = np.sqrt(d2) / ls
        return (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * np.exp(-SQRT5 * r)

    def fit(self, X: np.ndarray, y: np.ndarray, hyper: tuple[float, float] | None = None) -> GaussianProcess:
        self.X = X
        self.mean = float(y.mean())
        self.scale = float(y.std()) or 1.0
        t = (y - self.mean) / self.scale
        d2 = self._sqdist(X, X)
        n = len(X)
        grid = [hyper] if hyper else [(ls, nz) for ls in self.lengthscales for nz in self.noises]
        best = None
        kernels: dict[float, np.ndarray] = {}
        for ls, nz in grid:
            if ls not in kernels:
                kernels[ls] = self._matern(d2, ls)
            K = kernels[ls] + (nz + 1e-8) * np.eye(n)
            try:
                L = np.linalg.cholesky(K)
            except np.linalg.LinAlgError:
                continue
            a = solve_triangular(L, solve_triangular(L, t, lower=True), lower=True, trans=1)
            s2 = max(float(t @ a) / n, 1e-12)
            lml = -0.5 * n * np.log(s2) - np.log(np.diag(L)).sum()
            if best is None or lml > best[0]:
                best = (lml, ls, nz, L, a, s2)
        assert best is not None
        _, self.ls, self.noise, self.L, self.alpha, self.s2 = best
        return self

    @property
    def hyper(self) -> tuple[float, float]:
        return (self.ls, self.noise)

    def predict(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ks = self._matern(self._sqdist(Xs, self.X), self.ls)
        mu = Ks @ self.alpha
        v = solve_triangular(self.L, Ks.T, lower=True)
        var = self.s2 * np.maximum(1.0 - (v * v).sum(0), 1e-12)
        return self.mean + self.scale * mu, self.scale * np.sqrt(var)


class BayesianOptimisation(Strategy):
    """Surrogate + EI over a candidate pool; subclasses implement :meth:`_surrogate`."""

    def __init__(
        self,
        space: Any,
        budget: int = 100,
        seed: int = 0,
        n_init: int = 10,
        pool_size: int = 500,
        local_parents: int = 5,
        xi: float = 0.0,
        objectives: Sequence[str] = ("accuracy",),
    ) -> None:
        super().__init__(space, budget, seed, check_objectives(objectives, type(self).__name__))
        check(isinstance(n_init, int) and 1 <= n_init <= budget, "n_init", n_init, f"an integer from 1 to search.budget ({budget})")
        check(isinstance(pool_size, int) and pool_size >= 1, "pool_size", pool_size, "an integer >= 1")
        check(isinstance(local_parents, int) and local_parents >= 0, "local_parents", local_parents, "an integer >= 0")
        check(isinstance(xi, (int, float)) and xi >= 0, "xi", xi, "a number >= 0")
        self.n_init = n_init
        self.pool_size = pool_size
        self.local_parents = local_parents
        self.xi = float(xi)
        self.card = np.asarray(space.cardinalities())

    # ---- for subclasses
    def _surrogate(self, X: np.ndarray, y: np.ndarray, Xp: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fits to (X, y) plus pending points ``Xp`` at their believed values; returns mean, std on ``C``."""
        raise NotImplementedError

    # ---- the loop
    def _targets(self, results: list[dict[str, Any]]) -> np.ndarray:
        if not is_multi(self.objectives):
            return np.array([float(r["reward"]) for r in results])
        w = self.rng.dirichlet(np.ones(len(self.objectives)))
        return parego_scalarize(objective_matrix(results, self.objectives), w)

    def _pool(self, Xh: np.ndarray, y: np.ndarray, seen: set[tuple[int, ...]]) -> np.ndarray:
        cands = [self.rng.integers(0, self.card, size=(self.pool_size, len(self.card)))]
        for i in np.argsort(-y, kind="stable")[: self.local_parents]:
            x = Xh[i]
            for k, c in enumerate(self.card):
                nb = np.repeat(x[None], c - 1, 0)
                nb[:, k] = [v for v in range(c) if v != x[k]]
                cands.append(nb)
        C = np.unique(np.concatenate(cands), axis=0)
        keep = [i for i, row in enumerate(map(tuple, C)) if row not in seen]
        return C[keep]

    def _propose(self) -> Any:
        hist_x: dict[tuple[int, ...], dict[str, Any]] = {}
        for g, r in self.history:
            hist_x.setdefault(tuple(self.space.encode(g)), r)
        pend_x = [tuple(self.space.encode(g)) for g in self.pending]
        seen = set(hist_x) | set(pend_x)
        if len(hist_x) < 2 or self.n_told + len(self.pending) < self.n_init:
            return self._random(seen)
        Xh = np.array(list(hist_x), dtype=int)
        y = self._targets(list(hist_x.values()))
        C = self._pool(Xh, y, seen)
        if len(C) == 0:
            return self._random(seen)
        Xp = np.array([x for x in pend_x if x not in hist_x], dtype=int).reshape(-1, len(self.card))
        with single_thread_blas():
            mu, sd = self._surrogate(one_hot(Xh, self.card), y, one_hot(Xp, self.card), one_hot(C, self.card))
        ei = expected_improvement(mu, sd, float(y.max()), self.xi * float(y.std() or 1.0))
        return self.space.decode([int(v) for v in C[int(np.argmax(ei))]])

    def _random(self, seen: set[tuple[int, ...]]) -> Any:
        for _ in range(1000):
            x = tuple(int(v) for v in self.rng.integers(0, self.card))
            if x not in seen:
                break
        return self.space.decode(list(x))
