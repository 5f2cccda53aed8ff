"""A searched feature-pyramid neck made of merging cells (Ghiasi, Lin & Le, "NAS-FPN:
Learning Scalable Feature Pyramid Architecture for Object Detection", CVPR 2019).

The neck keeps a pool of feature maps, one per pyramid level to start with (the
backbone's levels projected to ``C`` channels; levels above the backbone's coarsest made
by stride-2 max pooling). Each merging cell picks two pool entries, an output level and a
binary op, resamples both inputs to the output level (nearest upsampling or max pooling,
always to the exact size of that level, so odd input sizes work), merges them and applies
ReLU -> 3x3 conv -> BN; its output joins the pool. The last ``L`` cells (``L`` levels
``min_level..max_level``) produce the output levels in order, so their level is not a
decision.

Binary ops (NAS-FPN, Fig. 5):

* ``sum``: ``a + b``;
* ``global_attention``: ``b + a * sigmoid(global_avg_pool(b))`` (global-pooling attention).

:class:`NasFpnSpace` (registered ``nasfpn``) is the decision vector; :class:`Neck` the
discrete module; :class:`MixedNeck` the continuous relaxation for DARTS-style one-shot
search (Liu et al., ICLR 2019): softmax weights over each cell's two inputs, its op and
(for the intermediate cells) its output level, whose candidate outputs are all computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from zoo.space.base import SPACES, SearchSpace
from zoo.space.genotype import GenotypeError, genotype_class

NECK_OPS: tuple[str, ...] = ("sum", "global_attention")

MergeCell = tuple[int, int, int, str]  # (input 1, input 2, output level, op)


# ---------------------------------------------------------------- genotype
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


# ---------------------------------------------------------------- search space
@SPACES.register("nasfpn")
class NasFpnSpace(SearchSpace):
    """Decision vector of a NAS-FPN neck: per cell in1, in2 (the other pool entries),
    the output level (intermediate cells only) and the op."""

    name = "nasfpn"

    def __init__(self, cells: int = 5, min_level: int = 3, max_level: int = 5, ops: Sequence[str] = NECK_OPS, **_: Any) -> None:
        unknown = [o for o in ops if o not in NECK_OPS]
        if unknown:
            raise ValueError(f"space.ops has unknown neck op {unknown[0]!r}; allowed: {', '.join(NECK_OPS)}")
        L = max_level - min_level + 1
        if not (isinstance(cells, int) and cells >= L):
            raise ValueError(
                f"space.cells={cells!r} is invalid; allowed: an integer >= {L} (one cell per output level P{min_level}..P{max_level})"
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
                f"space 'nasfpn' has {self.num_cells} cells for P{self.min_level}..P{self.max_level}"
            )
        x: list[int] = []
        for k, (a, b, level, op) in enumerate(genotype.cells):
            if op not in self.ops:
                raise GenotypeError(f"neck op {op!r} is not in space 'nasfpn'; allowed: {', '.join(self.ops)}")
            rest = [j for j in range(self.L + k) if j != a]
            x += [a, rest.index(b)] + ([level - self.min_level] if self._is_mid(k) else []) + [self.ops.index(op)]
        return x

    def genotype_from_json(self, data: dict[str, Any]) -> NeckGenotype:
        return NeckGenotype.from_json(data)


# ---------------------------------------------------------------- modules
def resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest upsampling or max pooling to exactly ``size`` (any ratio, odd sizes included)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if h >= size[0] and w >= size[1]:
        if h % size[0] == 0 and w % size[1] == 0:
            # the same windows as adaptive pooling at an exact ratio, and ONNX-exportable (adaptive pooling is not);
            # int() keeps the kernel a constant when traced
            return F.max_pool2d(x, (int(h) // int(size[0]), int(w) // int(size[1])))
        return F.adaptive_max_pool2d(x, size)
    if h <= size[0] and w <= size[1]:
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(F.adaptive_max_pool2d(x, (min(h, size[0]), min(w, size[1]))), size=size, mode="nearest")


def merge(op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if op == "sum":
        return a + b
    if op == "global_attention":
        return b + a * torch.sigmoid(b.mean(dim=(2, 3), keepdim=True))
    raise ValueError(f"neck op {op!r} is unknown; allowed: {', '.join(NECK_OPS)}")


def level_sizes(input_sizes: Sequence[tuple[int, int]], n_levels: int) -> list[tuple[int, int]]:
    """Spatial sizes of all levels; levels above the inputs halve (rounding up) as stride-2 pooling does."""
    sizes = [tuple(int(v) for v in s) for s in input_sizes]
    while len(sizes) < n_levels:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes  # type: ignore[return-value]


class NeckInput(nn.Module):
    """Projects backbone levels to ``C`` channels (1x1 conv + BN) and adds max-pooled levels above them."""

    def __init__(self, in_channels: Sequence[int], C: int, n_levels: int, affine: bool = True) -> None:
        super().__init__()
        if len(in_channels) > n_levels:
            raise ValueError(f"the backbone gives {len(in_channels)} levels; the neck takes at most {n_levels}")
        self.lateral = nn.ModuleList(nn.Sequential(nn.Conv2d(c, C, 1, bias=False), nn.BatchNorm2d(C, affine=affine)) for c in in_channels)
        self.n_levels = n_levels

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = [lat(f) for lat, f in zip(self.lateral, feats)]
        while len(out) < self.n_levels:
            out.append(F.max_pool2d(out[-1], 3, stride=2, padding=1))
        return out


def _conv_block(C: int, affine: bool) -> nn.Module:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C, affine=affine))


class MergingCell(nn.Module):
    """Resample two inputs to the output size, merge with ``op``, then ReLU-conv3x3-BN."""

    def __init__(self, op: str, C: int) -> None:
        super().__init__()
        if op not in NECK_OPS:
            raise ValueError(f"neck op {op!r} is unknown; allowed: {', '.join(NECK_OPS)}")
        self.op = op
        self.post = _conv_block(C, True)

    def forward(self, a: torch.Tensor, b: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.post(merge(self.op, resample(a, size), resample(b, size)))


class Neck(nn.Module):
    """The discrete NAS-FPN neck of a :class:`NeckGenotype`; ``forward(feats) -> [P_min..P_max]``.

    ``in_channels`` are the channels of the backbone levels ``min_level, min_level + 1, ...``.
    """

    def __init__(self, genotype: NeckGenotype, in_channels: Sequence[int], C: int) -> None:
        super().__init__()
        self.genotype = genotype
        self.L = genotype.num_levels
        self.input = NeckInput(in_channels, C, self.L)
        self.cells = nn.ModuleList(MergingCell(op, C) for _, _, _, op in genotype.cells)
        self.out_channels = C

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        pool = self.input(feats)
        sizes = level_sizes([p.shape[-2:] for p in pool], self.L)
        for (a, b, level, _), cell in zip(self.genotype.cells, self.cells):
            pool.append(cell(pool[a], pool[b], sizes[level - self.genotype.min_level]))
        return pool[-self.L :]


class MixedNeck(nn.Module):
    """Continuous relaxation of :class:`NasFpnSpace` for one-shot search.

    Cell ``k`` reads ``x1 = sum_j softmax(beta1_k)_j * pool_j`` and likewise ``x2`` (each
    entry resampled to the output level), mixes the ops with ``softmax(alpha_k)`` and, for
    intermediate cells, is computed at every candidate level; a later reader of such a
    cell sees ``sum_l softmax(gamma_k)_l * resample(out_{k,l})``. :meth:`genotype` keeps
    the argmax of each distribution (the second input excluding the first).
    """

    def __init__(
        self, in_channels: Sequence[int], C: int, cells: int = 5, min_level: int = 3, max_level: int = 5, ops: Sequence[str] = NECK_OPS
    ) -> None:
        super().__init__()
        self.space = NasFpnSpace(cells, min_level, max_level, ops)
        self.L = self.space.L
        self.min_level, self.max_level = min_level, max_level
        self.ops = list(ops)
        self.num_cells = cells
        self.input = NeckInput(in_channels, C, self.L, affine=False)
        self.posts = nn.ModuleList(_conv_block(C, False) for _ in range(cells))
        self.beta1 = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(self.L + k)) for k in range(cells))
        self.beta2 = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(self.L + k)) for k in range(cells))
        self.alpha = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(len(self.ops))) for _ in range(cells))
        self.n_mid = cells - self.L
        self.gamma = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(self.L)) for _ in range(self.n_mid))
        self.out_channels = C

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.beta1, *self.beta2, *self.alpha, *self.gamma]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        inputs = self.input(feats)
        sizes = level_sizes([p.shape[-2:] for p in inputs], self.L)
        # each pool entry: list of (weight or None, tensor) whose resampled weighted sum is its value
        pool: list[list[tuple[torch.Tensor | None, torch.Tensor]]] = [[(None, x)] for x in inputs]

        def read(entry: list[tuple[torch.Tensor | None, torch.Tensor]], size: tuple[int, int]) -> torch.Tensor:
            out = None
            for w, x in entry:
                y = resample(x, size) if w is None else w * resample(x, size)
                out = y if out is None else out + y
            return out  # type: ignore[return-value]

        outputs: list[torch.Tensor] = []
        for k in range(self.num_cells):
            w1 = torch.softmax(self.beta1[k], 0)
            w2 = torch.softmax(self.beta2[k], 0)
            wo = torch.softmax(self.alpha[k], 0)
            levels = range(self.L) if k < self.n_mid else [k - self.n_mid]
            entry = []
            for li in levels:
                size = sizes[li]
                vals = [read(e, size) for e in pool]
                x1 = sum(w * v for w, v in zip(w1, vals))
                x2 = sum(w * v for w, v in zip(w2, vals))
                merged = sum(w * merge(op, x1, x2) for w, op in zip(wo, self.ops))  # type: ignore[arg-type]
                entry.append(self.posts[k](merged))
            if k < self.n_mid:
                wl = torch.softmax(self.gamma[k], 0)
                pool.append([(wl[i], y) for i, y in enumerate(entry)])
            else:
                pool.append([(None, entry[0])])
                outputs.append(entry[0])
        return outputs

    def arch_weights(self) -> dict[str, list[list[float]]]:
        """The softmax distributions, for logs."""
        sm = lambda ps: [torch.softmax(p.detach().cpu(), 0).tolist() for p in ps]  # noqa: E731
        return {"neck_in1": sm(self.beta1), "neck_in2": sm(self.beta2), "neck_op": sm(self.alpha), "neck_level": sm(self.gamma)}

    def genotype(self) -> NeckGenotype:
        cells = []
        for k in range(self.num_cells):
            b1 = self.beta1[k].detach().cpu()
            b2 = self.beta2[k].detach().cpu().clone()
            a = int(b1.argmax())
            b2[a] = -float("inf")
            b = int(b2.argmax())
            level = self.min_level + (int(self.gamma[k].detach().argmax()) if k < self.n_mid else k - self.n_mid)
            cells.append((a, b, level, self.ops[int(self.alpha[k].detach().argmax())]))
        return NeckGenotype(tuple(cells), self.min_level, self.max_level)
