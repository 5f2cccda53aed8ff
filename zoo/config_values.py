"""Declared value specs for config fields, checked before any work starts.

Hydra and the CLI's pre-check catch unknown groups, options and keys; this module catches
bad *values* (a negative width, a fraction above one, a typo in a choice) and reports each
in one line naming the field, the value and what is allowed. Tasks declare the specs of
their ``task.*`` and ``data.*`` fields next to the code that reads them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

_ABSENT = object()


class ConfigError(ValueError):
    """A bad config value, reported in one line before any work starts."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def finite_number(v: Any) -> bool:
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return _is_number(v) and math.isfinite(v)


@dataclass(frozen=True)
class Number:
    """An int (``integer=True``) or a float in [low, high]; ``*_open`` makes a bound strict;
    ``items=True``: a non-empty list of them."""

    integer: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    null: bool = False
    items: bool = False

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.null
        if self.items:
            one = Number(self.integer, self.low, self.high, self.low_open, self.high_open)
            return isinstance(v, (list, tuple)) and len(v) > 0 and all(one.allows(x) for x in v)
        if not _is_number(v) or (self.integer and not isinstance(v, int)) or not math.isfinite(v):
            return False  # nan and inf compare false with every bound
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))

    def __str__(self) -> str:
        what = "an integer" if self.integer else "a number"
        lo = None if self.low is None else f"{self.low:g} {'<' if self.low_open else '<='} "
        hi = None if self.high is None else f" {'<' if self.high_open else '<='} {self.high:g}"
        if lo and hi:
            text = f"{what} with {lo}x{hi}"
        elif lo:
            text = f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        elif hi:
            text = f"{what} {'<' if self.high_open else '<='} {self.high:g}"
        else:
            text = what
        if self.items:
            text = f"a non-empty list of {text.replace('an integer', 'integers').replace('a number', 'numbers')}"
        return f"null or {text}" if self.null else text


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]
    null: bool = False

    def allows(self, v: Any) -> bool:
        return (v is None and self.null) or (v is not None and v in self.options)

    def __str__(self) -> str:
        opts = ", ".join(str(o) for o in self.options)
        return f"null or one of {opts}" if self.null else f"one of {opts}"


@dataclass(frozen=True)
class Flag:
    def allows(self, v: Any) -> bool:
        return isinstance(v, bool)

    def __str__(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """A non-empty string; ``items=True``: a non-empty list of them."""

    null: bool = False
    items: bool = False

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.null
        if self.items:
            return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(s, str) and s for s in v)
        return isinstance(v, str) and bool(v)

    def __str__(self) -> str:
        what = "a non-empty list of names" if self.items else "a non-empty string"
        return f"null or {what}" if self.null else what


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)([smhd]))+$")


def duration_seconds(v: Any) -> float | None:
    """Seconds in a duration: a positive number of seconds, or a string such as ``90s``, ``45m``,
    ``2h``, ``1h30m``; None when it is not one."""
    if _is_number(v):
        return float(v) if v > 0 else None
    if not isinstance(v, str) or not _DURATION.match(v.strip()):
        return None
    total = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", v.strip()))
    return total if total > 0 else None


@dataclass(frozen=True)
class Duration:
    """A wall-clock duration (:func:`duration_seconds`)."""

    null: bool = False

    def allows(self, v: Any) -> bool:
        return (v is None and self.null) or duration_seconds(v) is not None

    def __str__(self) -> str:
        what = "a duration such as 90s, 45m, 2h or 1h30m (or a number of seconds > 0)"
        return f"null or {what}" if self.null else what


_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)$", re.IGNORECASE)


def count_value(v: Any) -> int | None:
    """A positive count: a number, or a string such as ``500k``, ``2M``, ``1.5G`` (decimal prefixes,
    any case); None when it is not one (zero, negative, not a count)."""
    if _is_number(v):
        return int(round(v)) if math.isfinite(v) and v >= 1 else None
    m = _COUNT.match(v.strip()) if isinstance(v, str) else None
    if m is None:
        return None
    n = int(round(float(m.group(1)) * _SCALE[m.group(2).lower()]))
    return n if n >= 1 else None


@dataclass(frozen=True)
class Count:
    """A positive count (:func:`count_value`), e.g. a parameter or FLOP budget."""

    null: bool = False

    def allows(self, v: Any) -> bool:
        return (v is None and self.null) or count_value(v) is not None

    def __str__(self) -> str:
        what = "a positive count such as 500000, 500k, 2M or 1.5G"
        return f"null or {what}" if self.null else what


Spec = Number | OneOf | Flag | Text | Duration | Count

POSITIVE_INT = Number(integer=True, low=1)
NON_NEGATIVE_INT = Number(integer=True, low=0)
POSITIVE = Number(integer=False, low=0, low_open=True)
NON_NEGATIVE = Number(integer=False, low=0)
OPEN_FRACTION = Number(integer=False, low=0, high=1, low_open=True, high_open=True)
PROBABILITY = Number(integer=False, low=0, high=1)


def check_values(node: Any, specs: Mapping[str, Spec], where: str) -> None:
    """Raises :class:`ConfigError` for the first field of ``node`` (dotted keys) that a spec rejects.

    Absent fields are skipped: whether a key may exist is the config composition's business.
    """
    if node is None:
        return
    for key, spec in specs.items():
        value = OmegaConf.select(node, key, default=_ABSENT) if OmegaConf.is_config(node) else node.get(key, _ABSENT)
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not spec.allows(value):
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}={value!r} is invalid; allowed: {spec}")
