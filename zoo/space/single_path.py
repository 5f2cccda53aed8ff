"""Single-path one-shot supernet over the DARTS cell space (Guo et al., "Single Path One-Shot
Neural Architecture Search with Uniform Sampling", ECCV 2020).

Every (edge, op) pair of the cell has its own weights, shared by all architectures that use
it; a forward pass runs only the ops of one architecture (the *path*, a DARTS
:class:`Genotype` set with :meth:`SinglePathSuperNet.set_path`), exactly like the discrete
:class:`zoo.space.network.Cell` would. Training samples a new path per batch; evaluating an
architecture means setting its path, recalibrating the BN statistics and scoring it.
Ops use ``BatchNorm(affine=False)`` as in the DARTS supernet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from zoo.space.genotype import Genotype
from zoo.space.network import make_stem
from zoo.space.ops import DARTS_OPS, OPS
from zoo.space.supernet import edge_index, make_preprocess, num_edges, stack_cells


class SinglePathCell(nn.Module):
    """All candidate ops of every edge; ``forward(s0, s1, edges)`` runs the ``(op, input)`` pairs of one cell genotype."""

    def __init__(
        self, steps: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool, primitives: Sequence[str]
    ) -> None:
        super().__init__()
        self.reduction, self.steps = reduction, steps
        self.preprocess0, self.preprocess1 = make_preprocess(C_prev_prev, C_prev, C, reduction_prev)
        self.edges = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(nn.ModuleDict({p: OPS.get(p)(C, stride, False) for p in primitives if p != "none"}))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, edges: Sequence[tuple[str, int]], concat: Sequence[int]) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            (op_a, a), (op_b, b) = edges[2 * i], edges[2 * i + 1]
            ea, eb = self.edges[edge_index(i, a)], self.edges[edge_index(i, b)]
            states.append(ea[op_a](states[a]) + eb[op_b](states[b]))  # type: ignore[index]
        return torch.cat([states[k] for k in concat], dim=1)


class SinglePathSuperNet(nn.Module):
    """Stacked :class:`SinglePathCell` cells (stem and reductions as :class:`zoo.space.supernet.SuperNet`).

    The active path is a DARTS genotype whose cells concatenate all ``steps`` nodes (as the
    ``darts`` search space's genotypes do), so ``multiplier`` must equal ``steps``.
    ``genotype()`` returns the active path; there are no architecture parameters.
    """

    def __init__(
        self,
        num_classes: int = 10,
        init_channels: int = 16,
        layers: int = 8,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        in_chans: int = 3,
        stem: str = "cifar",
        primitives: Sequence[str] = DARTS_OPS,
        num_reductions: int = 2,
    ) -> None:
        super().__init__()
        if multiplier != steps:
            raise ValueError(
                f"single-path supernet: multiplier={multiplier} must equal steps={steps} (its genotypes concatenate every node)"
            )
        self.primitives = [p for p in primitives if p != "none"]
        self.steps = steps
        self.stem0, self.stem1, C_pp, C_p, red = make_stem(stem, in_chans, init_channels, stem_multiplier)
        self.cells, self.feature_info, self._stage_ends, C_p = stack_cells(
            lambda c_pp, c_p, c, red_, red_prev: SinglePathCell(steps, c_pp, c_p, c, red_, red_prev, self.primitives),
            layers,
            num_reductions,
            init_channels,
            C_pp,
            C_p,
            red,
            stem == "imagenet",
            steps,
        )
        self.num_features = C_p
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes) if num_classes > 0 else nn.Identity()
        self.path: Genotype | None = None
        self.n_edges = num_edges(steps)

    # ---- the active architecture
    def set_path(self, genotype: Genotype) -> None:
        if genotype.steps != self.steps:
            raise ValueError(f"genotype has {genotype.steps} nodes per cell; the supernet has {self.steps}")
        if len(genotype.normal_concat) != self.steps or len(genotype.reduce_concat) != self.steps:
            raise ValueError(
                f"the single-path supernet concatenates all {self.steps} nodes; genotype concatenates {list(genotype.normal_concat)}"
            )
        for name, src in tuple(genotype.normal) + tuple(genotype.reduce):
            if name not in self.primitives:
                raise ValueError(f"op {name!r} is not in the supernet; allowed: {', '.join(self.primitives)}")
        self.path = genotype

    def genotype(self) -> Genotype:
        if self.path is None:
            raise RuntimeError("no path set: call set_path(genotype) first")
        return self.path

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return self.parameters()

    # ---- forward
    def _run(self, x: torch.Tensor, collect: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        g = self.genotype()
        s0 = self.stem0(x)
        s1 = s0 if self.stem1 is None else self.stem1(s0)
        feats = []
        for i, cell in enumerate(self.cells):
            if cell.reduction:
                s0, s1 = s1, cell(s0, s1, g.reduce, g.reduce_concat)
            else:
                s0, s1 = s1, cell(s0, s1, g.normal, g.normal_concat)
            if collect and i in self._stage_ends:
                feats.append(s1)
        return s1, feats

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._run(x, collect=True)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self._run(x, collect=False)
        return self.classifier(self.global_pool(out).flatten(1))
