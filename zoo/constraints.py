"""Size and latency constraints on the network a run retrains, and fitting its width to them.

``constraints.params=500k``, ``constraints.flops=50M`` and ``constraints.latency_ms=3``, alone or
together, bound the final network (the one retrained, shipped and compared with the baseline). Its
costs are measured on the built model: parameters (the task's own count), FLOPs of one forward pass of
the task's example input (``torch.utils.flop_counter``, which counts a multiply-accumulate as two
FLOPs), and latency (:func:`zoo.estimate.latency.measure_latency_ms`: the median of timed passes on the
run's device, with the run's threads).

**Width fitting.** A task names the keys of ``task.model`` that set its network's width
(:attr:`zoo.task.Task.width_keys`, each with the multiple it must be: a Transformer's ``d_model`` a
multiple of its heads). The fitted network keeps the genotype and the depth and scales every width key
by one factor, as EfficientNet's width scaling does (Tan & Le, ICML 2019): the largest value of the
first key (the others follow in proportion) whose network meets every constraint, found by bisection,
since parameters and FLOPs grow with the width (latency nearly so; it is measured). It runs for the
winner before retraining, and for every candidate of a multi-trial search before the candidate is
trained (:class:`ConstrainedEstimator`): a candidate that no width fits is never trained, and is logged
as infeasible with its smallest cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from zoo.config_values import ConfigError, Count, Number, check_values, count_value, finite_number
from zoo.estimate.base import Estimator

SPECS = {"params": Count(null=True), "flops": Count(null=True), "latency_ms": Number(integer=False, low=0, low_open=True, null=True)}
MAX_SCALE = 8  # the fitted width is at most this many times the configured one
REACHABLE_SAMPLES = 24  # random architectures tried at the smallest width before a search starts


@dataclass(frozen=True)
class Constraints:
    """Upper bounds on the final network's cost; ``None``: not constrained."""

    params: int | None = None
    flops: int | None = None
    latency_ms: float | None = None

    @classmethod
    def from_cfg(cls, node: Any) -> Constraints:
        """From the ``constraints`` node of a run's config; one-line :class:`ConfigError` for a bad value."""
        if node is None:
            return cls()
        check_values(node, SPECS, "constraints")
        params, flops, latency = node.get("params"), node.get("flops"), node.get("latency_ms")
        return cls(
            params=None if params is None else count_value(params),
            flops=None if flops is None else count_value(flops),
            latency_ms=None if latency is None else float(latency),
        )

    @property
    def active(self) -> bool:
        return bool(self.limits())

    def limits(self) -> dict[str, float]:
        """``{cost name: limit}`` of the constraints set."""
        return {k: v for k, v in (("params", self.params), ("flops", self.flops), ("latency_ms", self.latency_ms)) if v is not None}

    def exceeded(self, cost: Mapping[str, float]) -> list[str]:
        """The names of the constraints ``cost`` breaks."""
        return [k for k, limit in self.limits().items() if cost[k] > limit]

    def describe(self, cost: Mapping[str, float]) -> str:
        """``params 183,012 (limit 200,000), latency_ms 2.41 (limit 3)``."""
        return ", ".join(f"{k} {_fmt(cost[k])} (limit {_fmt(limit)})" for k, limit in self.limits().items())

    def report(self, cost: Mapping[str, float]) -> dict[str, dict[str, float | bool]]:
        """What ``metrics.json`` records: per constraint its limit, the final cost and whether it is met."""
        return {k: {"limit": limit, "final": cost[k], "met": cost[k] <= limit} for k, limit in self.limits().items()}


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() and v >= 1000 else f"{v:g}"


@torch.no_grad()
def count_flops(model: torch.nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``example`` through ``model`` in eval mode (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example.to(next(model.parameters()).device))
    finally:
        model.train(was)
    return int(counter.get_total_flops())


def measure_cost(task: Any, model: torch.nn.Module, names: Any) -> dict[str, float]:
    """``model``'s costs: ``params`` always, ``flops`` and ``latency_ms`` when ``names`` has them."""
    cost: dict[str, float] = {"params": int(task.count_parameters(model))}
    if "flops" in names:
        cost["flops"] = count_flops(model, task.example_input())
    if "latency_ms" in names:
        from zoo.estimate.latency import measure_latency_ms

        cost["latency_ms"] = round(measure_latency_ms(model, task.example_input(), device=getattr(task, "device", None)), 4)
    return cost


@dataclass(frozen=True)
class Fitted:
    """The widths fitted to the constraints (``task.model`` keys) and the network's cost at them;
    ``feasible`` false: even the smallest width breaks a constraint (``cost`` is then the smallest's)."""

    widths: dict[str, int]
    cost: dict[str, float]
    feasible: bool
    capped: bool = False  # the widest allowed (MAX_SCALE x task.model) still meets the constraints: they leave room

    def to_json(self) -> dict[str, Any]:
        return {"widths": self.widths, "cost": self.cost, "feasible": self.feasible, "capped": self.capped}


def widths_at(task: Any, value: int) -> dict[str, int]:
    """The task's width keys when the first one is ``value`` (the others in proportion, each a multiple of its step)."""
    base = task.size_config(final=True, scaled=False)
    keys = dict(task.width_keys)
    first = next(iter(keys))
    ratio = value / float(base[first])
    return {k: max(step, int(round(float(base[k]) * ratio / step)) * step) for k, step in keys.items()}


def cost_at(task: Any, genotype: Any, widths: Mapping[str, int], names: Any) -> dict[str, float]:
    """The cost of ``genotype``'s final network at ``widths``."""
    with task.scaled_to(widths):
        model = task.build_model(genotype, final=True)
    return measure_cost(task, model, names)


def fits_at_some_width(task: Any, genotype: Any, constraints: Constraints) -> bool:
    """Whether ``genotype``'s final network meets ``constraints`` at the smallest width (so some width fits it):
    one build, where :func:`fit_width` bisects."""
    _, step = next(iter(dict(task.width_keys).items()))
    return not constraints.exceeded(cost_at(task, genotype, widths_at(task, step), set(constraints.limits())))


def fit_width(task: Any, genotype: Any, constraints: Constraints) -> Fitted:
    """The largest width (first width key; :func:`widths_at`) at which ``genotype``'s final network meets
    ``constraints``, by bisection between its step and :data:`MAX_SCALE` times the configured width."""
    keys = dict(task.width_keys)
    if not keys:
        raise ConfigError(f"constraints are invalid with task={task.name}: it names no width to fit (Task.width_keys)")
    first, step = next(iter(keys.items()))
    names = set(constraints.limits())
    top = max(1, int(task.size_config(final=True, scaled=False)[first]) * MAX_SCALE // step)
    costs: dict[int, dict[str, float]] = {}

    def cost(n: int) -> dict[str, float]:
        if n not in costs:
            costs[n] = cost_at(task, genotype, widths_at(task, n * step), names)
        return costs[n]

    if constraints.exceeded(cost(1)):
        return Fitted(widths_at(task, step), cost(1), feasible=False)
    lo, hi = 1, top  # cost(lo) meets the constraints; find the largest n that does
    if not constraints.exceeded(cost(hi)):
        return Fitted(widths_at(task, hi * step), cost(hi), feasible=True, capped=True)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if not constraints.exceeded(cost(mid)) else (lo, mid)
    return Fitted(widths_at(task, lo * step), cost(lo), feasible=True)


def check_reachable(task: Any, space: Any, constraints: Constraints, seed: int, field: str = "constraints") -> None:
    """One-line :class:`ConfigError` when none of :data:`REACHABLE_SAMPLES` random architectures of ``space``
    meets ``constraints`` at the smallest width, naming the constraints that the smallest costs found break
    (``field``: how the user set them, ``constraints`` or ``family``); run before any training."""
    rng = np.random.default_rng(seed)
    names = set(constraints.limits())
    _, step = next(iter(dict(task.width_keys).items()))
    smallest: dict[str, float] = {}
    for _ in range(REACHABLE_SAMPLES):
        c = cost_at(task, space.sample(rng), widths_at(task, step), names)
        if not constraints.exceeded(c):
            return
        smallest = {k: min(v, smallest.get(k, v)) for k, v in c.items()}
    broken = [k for k in constraints.limits() if smallest[k] > constraints.limits()[k]] or list(constraints.limits())
    wanted = ", ".join(f"{field}.{k}={_fmt(constraints.limits()[k])}" for k in broken)
    found = ", ".join(f"{k} {_fmt(smallest[k])}" for k in broken)
    raise ConfigError(
        f"{wanted} is invalid for task={task.name} space={space.name}: nothing in the space meets it at the smallest width "
        f"(smallest among {REACHABLE_SAMPLES} random architectures: {found}); allowed: a looser value"
    )


class ConstrainedEstimator(Estimator):
    """Wraps a multi-trial search's estimator: each candidate's final width is fitted to the constraints
    from its genotype first; one that no width fits is not trained, its result ``{"infeasible": true}``
    with its smallest cost (the search loop tells the strategy the worst result seen so far instead,
    :func:`zoo.runners.local.run_multi_trial`); the others are estimated as before, with the fitted
    widths and final cost beside the result."""

    def __init__(self, inner: Estimator, task: Any, constraints: Constraints) -> None:
        super().__init__(inner.cfg, task)
        self.inner = inner
        self.constraints = constraints
        self.needs_task = inner.needs_task
        self.tabular = inner.tabular
        self.provides = getattr(inner, "provides", ("reward",))

    def __call__(self, genotype: Any) -> dict[str, Any]:
        fitted = fit_width(self.task, genotype, self.constraints)
        if not fitted.feasible:
            return {"reward": None, "infeasible": True, "final_cost": fitted.cost, "final_widths": fitted.widths}
        return {**self.inner(genotype), "final_cost": fitted.cost, "final_widths": fitted.widths}

    def latency_ms(self, genotype: Any) -> float:
        return self.inner.latency_ms(genotype)  # type: ignore[attr-defined,no-any-return]


FAMILY_KINDS = {
    "params": "a non-empty list of positive counts such as [50k, 200k, 800k]",
    "latency_ms": "a non-empty list of numbers > 0 such as [1, 3, 10]",
}


@dataclass(frozen=True)
class Family:
    """The constraint kind a family varies (``params`` or ``latency_ms``) and its targets, smallest first
    (``family.params=[50k,200k,800k]``; run by :func:`zoo.family.run_family`)."""

    kind: str
    targets: tuple[float, ...]

    @classmethod
    def from_cfg(cls, cfg: Any) -> Family | None:
        """The run's family, ``None`` without one; one-line :class:`ConfigError` for a bad one."""
        node = cfg.get("family")
        if node is None:
            return None
        given = {k: node.get(k) for k in FAMILY_KINDS if node.get(k) is not None}
        if not given:
            return None
        if len(given) > 1:
            raise ConfigError(f"family.params and family.latency_ms are both set ({given}); allowed: one of them")
        kind, value = next(iter(given.items()))
        raw = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        items = raw if isinstance(raw, (list, tuple)) else None
        parsed = [_target(kind, v) for v in items] if items else None
        if not parsed or any(v is None for v in parsed) or len(set(parsed)) != len(parsed):
            raise ConfigError(f"family.{kind}={raw!r} is invalid; allowed: {FAMILY_KINDS[kind]}, each once")
        constrained = {k: v for k, v in (cfg.get("constraints") or {}).items() if v is not None}
        if constrained:
            raise ConfigError(
                f"family.{kind} is invalid with constraints ({', '.join(f'constraints.{k}={v}' for k, v in constrained.items())}): "
                "a family sets one constraint per member; allowed: one of them"
            )
        return cls(kind, tuple(sorted(float(v) for v in parsed)))  # type: ignore[arg-type]

    def label(self, target: float) -> str:
        """The member's directory name: ``params-200k``, ``latency_ms-3``."""
        return f"{self.kind}-{_short(target) if self.kind == 'params' else f'{target:g}'}"

    def constraint(self, target: float) -> dict[str, Any]:
        return {self.kind: int(target) if self.kind == "params" else float(target)}


def _target(kind: str, v: Any) -> float | None:
    if kind == "params":
        n = count_value(v)
        return None if n is None else float(n)
    return float(v) if finite_number(v) and v > 0 else None


def _short(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:g}{unit}"
    return f"{n:g}"
