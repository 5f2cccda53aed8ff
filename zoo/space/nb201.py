"""The NAS-Bench-201 cell space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes; node 0 is the cell input and node ``j`` is the sum of
``op_ij(x_i)`` over ``i < j`` (6 edges), each op one of ``none``, ``skip_connect``,
``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``: 5^6 = 15,625 cells. Node 3 is the
cell output. The text form is the benchmark's arch string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edges into node 1 | node 2 | node 3).

The network is the benchmark's macro skeleton: a 3x3 conv stem (16 channels) + BN,
three stages of ``N = 5`` cells at 16/32/64 channels separated by ResNet basic blocks
with stride 2 (He et al., CVPR 2016), BN + ReLU, global average pooling and a linear
classifier. With every edge ``nor_conv_3x3`` it has 1,531,546 parameters on
CIFAR-10 (the benchmark's largest cell, listed as 1.53 MB of parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from zoo.space.base import SPACES, SearchSpace
from zoo.space.genotype import GenotypeError, genotype_class
from zoo.space.ops import NB201_OPS, OPS, ReLUConvBN

NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for j in range(1, NODES) for i in range(j))
"""Edge order of the arch string and of the decision vector: (0,1), (0,2), (1,2), (0,3), (1,3), (2,3)."""


def _check_op(op: Any, where: str) -> str:
    if op not in NB201_OPS:
        raise GenotypeError(f"{where} has unknown op {op!r}; allowed: {', '.join(NB201_OPS)}")
    return str(op)


@genotype_class
@dataclass(frozen=True)
class NB201Genotype:
    """One NAS-Bench-201 cell: the op of each edge, in :data:`EDGES` order."""

    ops: tuple[str, ...]

    space: ClassVar[str] = "nb201"

    def __post_init__(self) -> None:
        if not isinstance(self.ops, (list, tuple)) or len(self.ops) != len(EDGES):
            raise GenotypeError(f"nb201 genotype field 'ops' must list {len(EDGES)} ops (one per edge), got {self.ops!r}")
        ops = tuple(_check_op(o, f"nb201 genotype edge {i}->{j}") for o, (i, j) in zip(self.ops, EDGES))
        object.__setattr__(self, "ops", ops)

    def edge(self, i: int, j: int) -> str:
        return self.ops[EDGES.index((i, j))]

    # ---- arch string
    def to_arch_str(self) -> str:
        nodes = []
        for j in range(1, NODES):
            nodes.append("|" + "|".join(f"{self.edge(i, j)}~{i}" for i in range(j)) + "|")
        return "+".join(nodes)

    @classmethod
    def from_arch_str(cls, text: str) -> NB201Genotype:
        """Parses ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        if not isinstance(text, str):
            raise GenotypeError(f"nb201 arch string must be a string, got {type(text).__name__}")
        parts = text.strip().split("+")
        if len(parts) != NODES - 1:
            raise GenotypeError(
                f"nb201 arch string {text!r} has {len(parts)} node block(s) separated by '+'; expected {NODES - 1} "
                "like |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
            )
        found: dict[tuple[int, int], str] = {}
        for j, part in enumerate(parts, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise GenotypeError(f"nb201 arch string block {part!r} for node {j} must start and end with '|'")
            items = part[1:-1].split("|")
            if len(items) != j:
                raise GenotypeError(f"nb201 arch string block {part!r} for node {j} must have {j} op~input item(s)")
            for item in items:
                op, sep, src = item.partition("~")
                if not sep or not src.isdigit():
                    raise GenotypeError(f"nb201 arch string item {item!r} for node {j} must read op~input, e.g. nor_conv_3x3~0")
                i = int(src)
                if i >= j or (i, j) in found:
                    raise GenotypeError(f"nb201 arch string item {item!r}: node {j} needs each input 0..{j - 1} exactly once")
                found[(i, j)] = _check_op(op, f"nb201 arch string edge {i}->{j}")
        return cls(tuple(found[e] for e in EDGES))

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "arch": self.to_arch_str()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NB201Genotype:
        if not isinstance(data, dict):
            raise GenotypeError(f"nb201 genotype JSON must be an object, got {type(data).__name__}")
        if data.get("space", "nb201") != "nb201":
            raise GenotypeError(f"genotype field 'space' is {data.get('space')!r}; expected 'nb201'")
        if "arch" in data:
            return cls.from_arch_str(data["arch"])
        if "ops" in data:
            return cls(tuple(data["ops"]))
        raise GenotypeError("nb201 genotype JSON needs field 'arch' (the arch string) or 'ops' (6 op names)")

    def __str__(self) -> str:
        return self.to_arch_str()

    def draw(self) -> Any:
        """The cell as a graph (a matplotlib figure)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
        pos = {0: (0.0, 0.5), 1: (1.0, 0.9), 2: (2.0, 0.1), 3: (3.0, 0.5)}
        for (i, j), op in zip(EDGES, self.ops):
            (x0, y0), (x1, y1) = pos[i], pos[j]
            style = dict(arrowstyle="-|>", lw=1.2, shrinkA=13, shrinkB=13, connectionstyle="arc3,rad=0.12")
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(color="0.75" if op == "none" else "tab:blue", **style))
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                op,
                fontsize=7,
                ha="center",
                va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9),
            )
        for n, (x, y) in pos.items():
            label = {0: "in", 3: "out"}.get(n, str(n))
            ax.text(
                x,
                y,
                label,
                ha="center",
                va="center",
                fontsize=8,
                bbox=dict(boxstyle="circle", fc="#fde9c9" if n in (1, 2) else "#cfe3f7", ec="0.3"),
            )
        ax.set_xlim(-0.4, 3.4)
        ax.set_ylim(-0.15, 1.15)
        ax.set_title("NAS-Bench-201 cell", fontsize=9)
        ax.axis("off")
        return fig


# ---------------------------------------------------------------- the network
class NB201Cell(nn.Module):
    """Node ``j`` = sum over ``i < j`` of ``op_ij(x_i)``; returns node 3. Keeps C channels and size."""

    def __init__(self, genotype: NB201Genotype, C: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({f"{i}_{j}": OPS.get(op)(C, 1, True) for (i, j), op in zip(EDGES, genotype.ops)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, NODES):
            nodes.append(sum(self.edges[f"{i}_{j}"](nodes[i]) for i in range(j)))
        return nodes[-1]


class ResNetReduction(nn.Module):
    """Stride-2 ResNet basic block between stages: two ReLU-conv3x3-BN and a pooled 1x1 shortcut."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton around one searched cell (shared by all 3N cells)."""

    def __init__(self, genotype: NB201Genotype, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.genotype = genotype
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        channels = [C, 2 * C, 4 * C]
        for stage, Cs in enumerate(channels):
            if stage:
                layers.append(ResNetReduction(channels[stage - 1], Cs))
            layers += [NB201Cell(genotype, Cs) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.last = nn.Sequential(nn.BatchNorm2d(channels[-1]), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels[-1], num_classes)
        self.feature_info = [{"num_chs": c, "reduction": 2**k, "module": f"stage{k}"} for k, c in enumerate(channels)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.last(self.cells(self.stem(x)))
        return self.classifier(self.pool(h).flatten(1))


def nb201_param_count(genotype: NB201Genotype, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3) -> int:
    """Parameters of :class:`NB201Network` computed from the genotype, without building it."""
    per_op = {"nor_conv_3x3": lambda c: 9 * c * c + 2 * c, "nor_conv_1x1": lambda c: c * c + 2 * c}
    channels = [C, 2 * C, 4 * C]
    total = 9 * in_channels * C + 2 * C  # stem conv + BN
    for stage, c in enumerate(channels):
        total += N * sum(per_op[o](c) if o in per_op else 0 for o in genotype.ops)
        if stage:
            p = channels[stage - 1]
            total += 9 * p * c + 2 * c + 9 * c * c + 2 * c + p * c
    total += 2 * channels[-1] + channels[-1] * num_classes + num_classes
    return total


# ---------------------------------------------------------------- the space
@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """Six categorical decisions (one op per edge) of five options each."""

    name = "nb201"

    def __init__(self, ops: Sequence[str] = NB201_OPS, **_: Any) -> None:
        if list(ops) != list(NB201_OPS):
            raise ValueError(f"space.ops={list(ops)!r} is invalid; space nb201 has the fixed op set {list(NB201_OPS)}")
        self.ops = list(NB201_OPS)

    def cardinalities(self) -> list[int]:
        return [len(self.ops)] * len(EDGES)

    def decision_names(self) -> list[str]:
        return [f"edge {i}->{j}" for i, j in EDGES]

    def decode(self, choices: Sequence[int]) -> NB201Genotype:
        if len(choices) != len(EDGES) or any(not 0 <= int(c) < len(self.ops) for c in choices):
            raise GenotypeError(f"nb201 decision vector {list(choices)!r} must hold {len(EDGES)} integers in 0..{len(self.ops) - 1}")
        return NB201Genotype(tuple(self.ops[int(c)] for c in choices))

    def encode(self, genotype: NB201Genotype) -> list[int]:
        if not isinstance(genotype, NB201Genotype):
            raise GenotypeError(f"space nb201 needs an NB201Genotype, got {type(genotype).__name__}")
        return [self.ops.index(o) for o in genotype.ops]

    def genotype_from_json(self, data: dict[str, Any]) -> NB201Genotype:
        return NB201Genotype.from_json(data)

    def describe(self, genotype: Any) -> str:
        return genotype.to_arch_str()

    def build_network(self, genotype: NB201Genotype, **kwargs: Any) -> NB201Network:
        return NB201Network(genotype, **kwargs)
