"""Hand-made models sized to a parameter count: the baseline of the searched model's size.

A task's baseline family is a builder ``make(w)`` of a real width multiplier ``w`` (channel widths
``round(w * base)``), whose parameter count grows with ``w``. :func:`fit_params` bisects ``w`` to the
member closest to a target count, so that every run compares the searched model with the hand-made one
of the same size (within ``tolerance``, recorded) instead of a fixed, far larger one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from zoo.config_values import ConfigError, count_value

STEPS = 30  # bisection steps on the width multiplier: far finer than one channel


@dataclass
class Sized:
    """The member closest to ``target`` parameters: its width multiplier and count."""

    model: nn.Module
    width: float
    params: int
    target: int

    @property
    def ratio(self) -> float:
        return self.params / self.target

    def within(self, tolerance: float) -> bool:
        return abs(self.params - self.target) <= tolerance * self.target

    def report(self, tolerance: float) -> dict[str, Any]:
        """What a baseline's entry in ``metrics.json`` says of its size."""
        return {"params_target": self.target, "params_within_tolerance": self.within(tolerance)}


def target_params(baseline_cfg: Any, searched_params: int) -> int:
    """The size a baseline is fitted to: ``task.baseline.params`` when given, else the searched model's."""
    asked = baseline_cfg.get("params")
    return int(count_value(asked) or searched_params) if asked is not None else searched_params


def resnet_widths(w: float) -> dict[str, Any]:
    """A timm ResNet's widths scaled by ``w`` (``w = 1``: stem 8, stages 8-64 channels), as ``timm.create_model``
    arguments: the hand-made families' shared backbone."""
    return {"stem_width": max(1, round(8 * w)), "channels": tuple(max(1, round(b * w)) for b in (8, 16, 32, 64))}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit_params(
    make: Callable[[float], nn.Module], target: int, low: float, high: float, counter: Callable[[nn.Module], int] = count
) -> Sized:
    """The member of ``make`` (over widths in [``low``, ``high``]) whose parameter count is closest to ``target``."""
    counts: dict[float, int] = {}
    best: list[tuple[int, float, nn.Module]] = []  # (distance to target, width, model) of the closest so far

    def at(w: float) -> int:
        if w not in counts:
            m = make(w)
            counts[w] = counter(m)
            if not best or (abs(counts[w] - target), w) < best[0][:2]:
                best[:] = [(abs(counts[w] - target), w, m)]
        return counts[w]

    lo, hi = low, high
    if at(lo) < target < at(hi):
        for _ in range(STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if at(mid) < target else (lo, mid)
            if counts[lo] == counts[hi]:
                break
    _, width, model = best[0]
    return Sized(model, width, counts[width], target)


def check_timm_model(field: str, name: object) -> None:
    """One-line :class:`ConfigError` unless ``name`` (a named, fixed-size baseline) is a model timm can build."""
    if name is None:
        return
    import timm

    if not timm.is_model(str(name)):
        raise ConfigError(
            f"{field}={name!r} is not a timm model; allowed: a name timm.list_models() lists, e.g. resnet18, "
            "mobilenetv3_small_100, lcnet_050 (or null: the ResNet-18 scaled to the searched model's size)"
        )
