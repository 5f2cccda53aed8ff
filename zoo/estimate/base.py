"""Performance estimators: what a multi-trial strategy's candidate is worth.

An estimator maps a genotype to a result dict with a higher-is-better ``reward``.
``needs_task`` says whether it trains through a task (``train``) or answers from a
table (NAS-Bench-201). A tabular estimator also gives the ``final`` metrics of the
chosen architecture, replacing retraining.
"""
from __future__ import annotations

from typing import Any

from zoo.registry import Registry


class Estimator:
    needs_task: bool = True
    tabular: bool = False

    def __init__(self, cfg: Any = None, task: Any = None) -> None:
        self.cfg = cfg
        self.task = task

    def __call__(self, genotype: Any) -> dict[str, Any]:
        raise NotImplementedError

    def final(self, genotype: Any) -> dict[str, Any]:
        """Final metrics without retraining (tabular estimators only)."""
        raise NotImplementedError


ESTIMATORS: Registry[type[Estimator]] = Registry("estimator", "zoo.estimate")


@ESTIMATORS.register("train")
class TrainEstimator(Estimator):
    """Short-budget training through the task (``trainer.estimate_epochs`` epochs)."""

    def __call__(self, genotype: Any) -> dict[str, Any]:
        return self.task.estimate(genotype)
