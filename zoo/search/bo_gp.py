"""Bayesian optimisation with a Gaussian-process surrogate over the one-hot encoding and
expected improvement (Jones et al. 1998; Snoek, Larochelle & Adams, "Practical Bayesian
Optimization of Machine Learning Algorithms", NeurIPS 2012; for NAS, Kandasamy et al.,
"Neural Architecture Search with Bayesian Optimisation and Optimal Transport", NeurIPS 2018).

See :mod:`zoo.search.bayesopt` for the loop (candidate pool, batch asks, ParEGO for
several objectives) and :class:`~zoo.search.bayesopt.GaussianProcess` for the model.
"""

from __future__ import annotations

import numpy as np

from zoo.search.base import STRATEGIES
from zoo.search.bayesopt import BayesianOptimisation, GaussianProcess


@STRATEGIES.register("bo_gp")
class GPBayesOpt(BayesianOptimisation):
    def _surrogate(self, X: np.ndarray, y: np.ndarray, Xp: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gp = GaussianProcess().fit(X, y)
        if len(Xp):  # kriging believer: pending points at the predicted mean, same hyper-parameters
            yp, _ = gp.predict(Xp)
            gp = GaussianProcess().fit(np.vstack([X, Xp]), np.concatenate([y, yp]), hyper=gp.hyper)
        return gp.predict(C)
