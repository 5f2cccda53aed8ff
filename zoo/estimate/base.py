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
    """Short-budget training through the task (``trainer.estimate_epochs`` epochs).

    Adds ``latency_ms``: the final (retrained-size) model built from the genotype, timed on this
    machine on one example input of the task, on the task's device (:func:`zoo.estimate.latency.measure_latency_ms`),
    so ``search.objectives=[accuracy, latency]`` works outside benchmark mode too.
    """

    provides = ("reward", "params", "latency_ms")

    def __init__(self, cfg: Any = None, task: Any = None) -> None:
        super().__init__(cfg, task)
        if cfg is not None:
            latency, repeats = cfg.get("latency", True), cfg.get("latency_repeats", 10)
            if not isinstance(latency, bool):
                raise ValueError(f"estimate.latency={latency!r} is invalid; allowed: true or false")
            if not (isinstance(repeats, int) and not isinstance(repeats, bool) and repeats >= 1):
                raise ValueError(f"estimate.latency_repeats={repeats!r} is invalid; allowed: an integer >= 1")

    def __call__(self, genotype: Any) -> dict[str, Any]:
        result = dict(self.task.estimate(genotype))
        if self.cfg is None or bool(self.cfg.get("latency", True)):
            result["latency_ms"] = self.latency_ms(genotype)
        return result

    def latency_ms(self, genotype: Any) -> float:
        from zoo.estimate.latency import measure_latency_ms

        repeats = int(self.cfg.get("latency_repeats", 10)) if self.cfg is not None else 10
        model = self.task.build_model(genotype, final=True)
        example = self.task.example_input()
        return round(measure_latency_ms(model, example, repeats=repeats, device=getattr(self.task, "device", None)), 4)
