"""The detection space: a DARTS-cell backbone and a NAS-FPN neck, searched together or one at a time.

:class:`DetectionGenotype` (space ``detection``) always holds both parts, so a genotype
alone rebuilds the model. :class:`DetectionSpace` (registered ``detection``) is a
composite :class:`SearchSpace`: its decision vector is the concatenation of the searched
parts' vectors (``target`` = ``backbone``, ``neck`` or ``both``); the part that is not
searched is fixed (a published cell such as ``darts_v2`` for the backbone, the
hand-designed top-down + bottom-up neck for the neck). Every multi-trial strategy works
on it unchanged.

The neck is made of merging cells (Ghiasi, Lin & Le, "NAS-FPN: Learning Scalable Feature
Pyramid Architecture for Object Detection", CVPR 2019). It keeps a pool of feature maps, one
per pyramid level to start with (the backbone's levels projected to ``C`` channels; levels
above the backbone's coarsest made by stride-2 max pooling). Each merging cell picks two pool
entries, an output level and a binary op, resamples both inputs to the output level (nearest
upsampling or max pooling, always to the exact size of that level, so odd input sizes work),
merges them and applies ReLU -> 3x3 conv -> BN; its output joins the pool. The last ``L``
cells (``L`` levels ``min_level..max_level``) produce the output levels in order, so their
level is not a decision. Binary ops (NAS-FPN, Fig. 5): ``sum`` (``a + b``) and
``global_attention`` (``b + a * sigmoid(global_avg_pool(b))``, global-pooling attention).

:class:`NeckGenotype` (genotype space ``nasfpn``) holds the cells and :class:`NasFpnSpace`
their decision vector, the neck part of :class:`DetectionSpace` (it is not a space of its
own: no task builds a neck alone); the discrete module is :class:`tasks.detection.model.Neck`,
the relaxation :class:`tasks.detection.supernet.MixedNeck`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zoo.space.base import SPACES, SearchSpace
from zoo.space.darts_space import DartsSpace
from zoo.space.genotype import Genotype, GenotypeError, genotype_class
from zoo.space.ops import DARTS_OPS

NECK_OPS: tuple[str, ...] = ("sum", "global_attention")

MergeCell = tuple[int, int, int, str]  # (input 1, input 2, output level, op)


# ---------------------------------------------------------------- the neck: NAS-FPN merging cells
@genotype_class
@dataclass(frozen=True)
class NeckGenotype:
    """Merging cells of a NAS-FPN neck: ``cells[k] = (in1, in2, level, op)``.

    Pool index ``i < L`` is input level ``min_level + i``; index ``L + k`` is cell ``k``'s
    output. The last ``L`` cells must output levels ``min_level..max_level`` in order.
    """

    cells: tuple[MergeCell, ...]
    min_level: int = 3
    max_level: int = 5

    space: ClassVar[str] = "nasfpn"

    def __post_init__(self) -> None:
        if not (isinstance(self.min_level, int) and isinstance(self.max_level, int) and 1 <= self.min_level <= self.max_level <= 9):
            raise GenotypeError(
                f"neck genotype levels {self.min_level}..{self.max_level} are invalid; allowed: 1 <= min_level <= max_level <= 9"
            )
        L = self.num_levels
        if not isinstance(self.cells, (list, tuple)) or len(self.cells) < L:
            raise GenotypeError(f"neck genotype field 'cells' needs at least {L} cells (one per output level), got {self.cells!r}")
        cells = []
        for k, c in enumerate(self.cells):
            if not (isinstance(c, (list, tuple)) and len(c) == 4):
                raise GenotypeError(f"neck genotype field cells[{k}] must be [in1, in2, level, op], got {c!r}")
            a, b, level, op = c
            pool = L + k
            for name, v in (("in1", a), ("in2", b)):
                if not (isinstance(v, int) and 0 <= v < pool):
                    raise GenotypeError(f"neck genotype field cells[{k}].{name} is {v!r}; allowed: 0..{pool - 1}")
            if a == b:
                raise GenotypeError(f"neck genotype field cells[{k}] reads pool entry {a} twice; the two inputs must differ")
            if not (isinstance(level, int) and self.min_level <= level <= self.max_level):
                raise GenotypeError(f"neck genotype field cells[{k}].level is {level!r}; allowed: {self.min_level}..{self.max_level}")
            final = k - (len(self.cells) - L)
            if final >= 0 and level != self.min_level + final:
                raise GenotypeError(
                    f"neck genotype field cells[{k}].level is {level}; the last {L} cells output levels "
                    f"{self.min_level}..{self.max_level} in order, so it must be {self.min_level + final}"
                )
            if op not in NECK_OPS:
                raise GenotypeError(f"neck genotype field cells[{k}].op is {op!r}; allowed: {', '.join(NECK_OPS)}")
            cells.append((int(a), int(b), int(level), str(op)))
        object.__setattr__(self, "cells", tuple(cells))

    @property
    def num_levels(self) -> int:
        return self.max_level - self.min_level + 1

    @property
    def levels(self) -> list[int]:
        return list(range(self.min_level, self.max_level + 1))

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "min_level": self.min_level, "max_level": self.max_level, "cells": [list(c) for c in self.cells]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NeckGenotype:
        if "cells" not in data:
            raise GenotypeError("neck genotype is missing field 'cells'")
        return cls(tuple(tuple(c) for c in data["cells"]), int(data.get("min_level", 3)), int(data.get("max_level", 5)))  # type: ignore[arg-type]

    def __str__(self) -> str:
        L = self.num_levels
        name = lambda i: f"P{self.min_level + i}in" if i < L else f"c{i - L}"  # noqa: E731
        return "Neck(" + ", ".join(f"c{k}=P{lv}:{op}({name(a)},{name(b)})" for k, (a, b, lv, op) in enumerate(self.cells)) + ")"


def fpn_neck_genotype(min_level: int = 3, max_level: int = 5, extra_cells: int | None = None) -> NeckGenotype:
    """A hand-designed neck in merging cells: a top-down pass (FPN, Lin et al. CVPR 2017)
    as the intermediate cells, then a bottom-up pass producing the outputs (as in PANet)."""
    L = max_level - min_level + 1
    n_mid = L - 1 if extra_cells is None else extra_cells
    cells: list[MergeCell] = []
    prev = L - 1  # coarsest input level
    for k in range(n_mid):
        level = max(max_level - 1 - k, min_level)
        own = level - min_level
        a, b = (own, prev) if own != prev else (own, L - 1 if own != L - 1 else 0)
        cells.append((a, b, level, "sum"))
        prev = L + k
    for i in range(L):
        pool = L + len(cells)
        own = i
        a = pool - 1
        b = own if own != a else (own + 1) % pool
        cells.append((a, b, min_level + i, "sum"))
    return NeckGenotype(tuple(cells), min_level, max_level)


class NasFpnSpace(SearchSpace):
    """Decision vector of a NAS-FPN neck: per cell in1, in2 (the other pool entries),
    the output level (intermediate cells only) and the op."""

    name = "nasfpn"

    def __init__(self, cells: int = 5, min_level: int = 3, max_level: int = 5, ops: Sequence[str] = NECK_OPS, **_: Any) -> None:
        unknown = [o for o in ops if o not in NECK_OPS]
        if unknown:
            raise ValueError(f"space.neck_ops has unknown neck op {unknown[0]!r}; allowed: {', '.join(NECK_OPS)}")
        L = max_level - min_level + 1
        if not (isinstance(cells, int) and cells >= L):
            raise ValueError(
                f"space.neck_cells={cells!r} is invalid; allowed: an integer >= {L} (one cell per output level P{min_level}..P{max_level})"
            )
        self.num_cells = cells
        self.min_level, self.max_level = min_level, max_level
        self.L = L
        self.ops = list(ops)

    def _is_mid(self, k: int) -> bool:
        return k < self.num_cells - self.L

    def cardinalities(self) -> list[int]:
        card: list[int] = []
        for k in range(self.num_cells):
            pool = self.L + k
            card += [pool, pool - 1] + ([self.L] if self._is_mid(k) else []) + [len(self.ops)]
        return card

    def decision_names(self) -> list[str]:
        names = []
        for k in range(self.num_cells):
            names += (
                [f"neck.cell{k}.in1", f"neck.cell{k}.in2"] + ([f"neck.cell{k}.level"] if self._is_mid(k) else []) + [f"neck.cell{k}.op"]
            )
        return names

    def groups(self) -> list[list[int]]:
        out, i = [], 0
        for k in range(self.num_cells):
            n = 4 if self._is_mid(k) else 3
            out.append(list(range(i, i + n)))
            i += n
        return out

    def decode(self, choices: Sequence[int]) -> NeckGenotype:
        cells, i = [], 0
        for k in range(self.num_cells):
            a, b = int(choices[i]), int(choices[i + 1])
            rest = [j for j in range(self.L + k) if j != a]
            i += 2
            if self._is_mid(k):
                level = self.min_level + int(choices[i])
                i += 1
            else:
                level = self.min_level + k - (self.num_cells - self.L)
            cells.append((a, rest[b], level, self.ops[int(choices[i])]))
            i += 1
        return NeckGenotype(tuple(cells), self.min_level, self.max_level)

    def encode(self, genotype: NeckGenotype) -> list[int]:
        if len(genotype.cells) != self.num_cells or (genotype.min_level, genotype.max_level) != (self.min_level, self.max_level):
            raise GenotypeError(
                f"neck genotype has {len(genotype.cells)} cells for P{genotype.min_level}..P{genotype.max_level}; "
                f"the neck of space 'detection' has {self.num_cells} cells for P{self.min_level}..P{self.max_level}"
            )
        x: list[int] = []
        for k, (a, b, level, op) in enumerate(genotype.cells):
            if op not in self.ops:
                raise GenotypeError(f"neck op {op!r} is not in space.neck_ops; allowed: {', '.join(self.ops)}")
            rest = [j for j in range(self.L + k) if j != a]
            x += [a, rest.index(b)] + ([level - self.min_level] if self._is_mid(k) else []) + [self.ops.index(op)]
        return x

    def genotype_from_json(self, data: dict[str, Any]) -> NeckGenotype:
        return NeckGenotype.from_json(data)


# ---------------------------------------------------------------- backbone + neck
TARGETS = ("backbone", "neck", "both")


@genotype_class
@dataclass(frozen=True)
class DetectionGenotype:
    """Backbone cells (a DARTS :class:`Genotype`) + neck merging cells (a :class:`NeckGenotype`)."""

    backbone: Genotype
    neck: NeckGenotype

    space: ClassVar[str] = "detection"
    task: ClassVar[str] = "detection"  # zoo.create_model builds it with the detection task's builder

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, Genotype):
            raise GenotypeError(f"detection genotype field 'backbone' must be a DARTS genotype, got {type(self.backbone).__name__}")
        if not isinstance(self.neck, NeckGenotype):
            raise GenotypeError(f"detection genotype field 'neck' must be a neck genotype, got {type(self.neck).__name__}")

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "backbone": self.backbone.to_json(), "neck": self.neck.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionGenotype:
        missing = [k for k in ("backbone", "neck") if k not in data]
        if missing:
            raise GenotypeError(f"detection genotype is missing field(s) {', '.join(missing)}")
        return cls(Genotype.from_json(data["backbone"]), NeckGenotype.from_json(data["neck"]))

    def __str__(self) -> str:
        return f"backbone={self.backbone.to_text()} neck={self.neck}"


def _resolve_backbone(arch: Any) -> Genotype:
    if isinstance(arch, Genotype):
        return arch
    if isinstance(arch, dict):
        return Genotype.from_json(arch)
    from zoo.space.published import PUBLISHED

    key = str(arch).lower().replace("-", "_")
    if key in PUBLISHED:
        return PUBLISHED[key]
    if str(arch).strip().startswith("Genotype("):
        return Genotype.from_text(str(arch))
    raise ValueError(f"space.fixed_backbone={arch!r} is unknown; allowed: {', '.join(sorted(PUBLISHED))} or a genotype")


@SPACES.register("detection")
class DetectionSpace(SearchSpace):
    """Concatenated decision vectors of the searched parts (backbone first)."""

    name = "detection"

    def __init__(
        self,
        target: str = "both",
        steps: int = 4,
        primitives: Sequence[str] = DARTS_OPS,
        neck_cells: int = 5,
        min_level: int = 3,
        max_level: int = 5,
        neck_ops: Sequence[str] = NECK_OPS,
        fixed_backbone: Any = "darts_v2",
        fixed_neck: Any = None,
        **_: Any,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"search.target={target!r} is invalid; allowed: {', '.join(TARGETS)}")
        self.target = target
        self.backbone_space = DartsSpace(steps, primitives)
        self.neck_space = NasFpnSpace(neck_cells, min_level, max_level, neck_ops)
        self.primitives = self.backbone_space.primitives
        self.steps = steps
        self.fixed_backbone = _resolve_backbone(fixed_backbone)
        self.fixed_neck = (
            NeckGenotype.from_json(fixed_neck)
            if isinstance(fixed_neck, dict)
            else fpn_neck_genotype(min_level, max_level, neck_cells - (max_level - min_level + 1))
        )
        self.parts: list[tuple[str, SearchSpace]] = []
        if target in ("backbone", "both"):
            self.parts.append(("backbone", self.backbone_space))
        if target in ("neck", "both"):
            self.parts.append(("neck", self.neck_space))

    def _split(self, x: Sequence[int]) -> dict[str, list[int]]:
        out, i = {}, 0
        for name, sp in self.parts:
            n = len(sp.cardinalities())
            out[name] = list(x[i : i + n])
            i += n
        return out

    def cardinalities(self) -> list[int]:
        return [c for _, sp in self.parts for c in sp.cardinalities()]

    def decision_names(self) -> list[str]:
        names = []
        for name, sp in self.parts:
            names += [n if n.startswith(name) else f"{name}.{n}" for n in sp.decision_names()]
        return names

    def groups(self) -> list[list[int]]:
        out, offset = [], 0
        for _, sp in self.parts:
            out += [[offset + k for k in g] for g in sp.groups()]
            offset += len(sp.cardinalities())
        return out

    def decode(self, choices: Sequence[int]) -> DetectionGenotype:
        x = self._split(choices)
        backbone = self.backbone_space.decode(x["backbone"]) if "backbone" in x else self.fixed_backbone
        neck = self.neck_space.decode(x["neck"]) if "neck" in x else self.fixed_neck
        return DetectionGenotype(backbone, neck)

    def encode(self, genotype: DetectionGenotype) -> list[int]:
        x: list[int] = []
        for name, sp in self.parts:
            x += sp.encode(getattr(genotype, name))
        return x

    def genotype_from_json(self, data: dict[str, Any]) -> DetectionGenotype:
        return DetectionGenotype.from_json(data)

    def describe(self, genotype: Any) -> str:
        return str(genotype)
