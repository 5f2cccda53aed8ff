"""SMAC-style Bayesian optimisation with a random-forest surrogate (Hutter, Hoos &
Leyton-Brown, "Sequential Model-Based Optimization for General Algorithm Configuration",
LION 2011): the forest's mean and the spread of its trees' predictions are the
surrogate's mean and uncertainty, candidates are ranked by expected improvement.

The forest is scikit-learn's :class:`~sklearn.ensemble.RandomForestRegressor` over the
one-hot encoding; its random state is drawn from the strategy's generator, so runs and
resumed runs are reproducible. See :mod:`zoo.search.bayesopt` for the loop.
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

    def _forest(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        import sklearn
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(
            n_estimators=self.n_trees,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            bootstrap=True,
            random_state=seed,
            n_jobs=1,
        )
        # the inputs are ours and always valid: skip the per-tree argument checks, the bulk of a small fit's time
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            return rf.fit(X, y)

    @staticmethod
    def _predict(rf: Any, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C32 = np.asarray(C, dtype=np.float32)  # the trees' own dtype, so input checks can be skipped
        per_tree = np.stack([t.predict(C32, check_input=False) for t in rf.estimators_])
        return per_tree.mean(0), per_tree.std(0)

    def _surrogate(self, X: np.ndarray, y: np.ndarray, Xp: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seed = int(self.rng.integers(2**31 - 1))
        rf = self._forest(X, y, seed)
        if len(Xp):  # kriging believer: pending points at the forest's mean
            yp, _ = self._predict(rf, Xp)
            rf = self._forest(np.vstack([X, Xp]), np.concatenate([y, yp]), seed)
        return self._predict(rf, C)
