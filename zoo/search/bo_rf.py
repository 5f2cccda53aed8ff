"""SMAC-style Bayesian optimisation with a random-forest surrogate (Hutter, Hoos &
Leyton-Brown, "Sequential Model-Based Optimization for General Algorithm Configuration",
LION 2011): the forest's mean and the spread of its trees' predictions are the
surrogate's mean and uncertainty, candidates are ranked by expected improvement.

The forest is Breiman's (Machine Learning 45, 2001): scikit-learn
:class:`~sklearn.tree.DecisionTreeRegressor` trees over the one-hot encoding, each fitted to a
bootstrap of the observations (rows drawn with replacement, as Breiman draws them). The trees
are fitted directly rather than through ``RandomForestRegressor``, whose per-tree cloning and
parameter introspection took four fifths of a search's time at these sizes (a few hundred
observations, 30 trees, a fit per proposal). Every random draw comes from a generator seeded
by the strategy's own, so runs and resumed runs are reproducible. See
:mod:`zoo.search.bayesopt` for the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.search.base import STRATEGIES, check
from zoo.search.bayesopt import BayesianOptimisation


@STRATEGIES.register("bo_rf")
class RFBayesOpt(BayesianOptimisation):
    def __init__(
        self,
        space: Any,
        budget: int = 100,
        seed: int = 0,
        n_init: int = 10,
        pool_size: int = 500,
        local_parents: int = 5,
        xi: float = 0.0,
        n_trees: int = 30,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        objectives: Sequence[str] = ("accuracy",),
    ) -> None:
        super().__init__(space, budget, seed, n_init, pool_size, local_parents, xi, objectives)
        check(isinstance(n_trees, int) and n_trees >= 2, "n_trees", n_trees, "an integer >= 2")
        check(isinstance(min_samples_leaf, int) and min_samples_leaf >= 1, "min_samples_leaf", min_samples_leaf, "an integer >= 1")
        check(isinstance(max_features, (int, float)) and 0 < max_features <= 1, "max_features", max_features, "a fraction in (0, 1]")
        self.n_trees = n_trees
        self.min_samples_leaf = min_samples_leaf
        self.max_features = float(max_features)

    def _forest(self, X: np.ndarray, y: np.ndarray, seed: int) -> list[Any]:
        import sklearn
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.RandomState(seed)  # one state for the bootstraps and the trees' own draws (seeding is dear)
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # the trees' own dtype, so input checks can be skipped
        y64 = np.ascontiguousarray(y, dtype=np.float64)
        n = len(X32)
        trees = []
        # the inputs are ours and always valid: skip the per-tree argument checks, the bulk of a small fit's time
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            for _ in range(self.n_trees):
                rows = rng.randint(0, n, n)  # the bootstrap
                tree = DecisionTreeRegressor(min_samples_leaf=self.min_samples_leaf, max_features=self.max_features, random_state=rng)
                trees.append(tree.fit(X32[rows], y64[rows], check_input=False))
        return trees

    @staticmethod
    def _predict(trees: list[Any], C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C32 = np.ascontiguousarray(C, dtype=np.float32)
        per_tree = np.stack([t.predict(C32, check_input=False) for t in trees])
        return per_tree.mean(0), per_tree.std(0)

    def _surrogate(self, X: np.ndarray, y: np.ndarray, Xp: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seed = int(self.rng.integers(2**31 - 1))
        trees = self._forest(X, y, seed)
        if len(Xp):  # kriging believer: pending points at the forest's mean
            yp, _ = self._predict(trees, Xp)
            trees = self._forest(np.vstack([X, Xp]), np.concatenate([y, yp]), seed)
        return self._predict(trees, C)
