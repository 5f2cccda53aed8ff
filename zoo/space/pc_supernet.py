"""Partially-connected DARTS supernet (Xu et al., "PC-DARTS: Partial Channel Connections for
Memory-Efficient Architecture Search", ICLR 2020).

Two changes to the DARTS supernet (:class:`zoo.space.supernet.SuperNet`):

* **Partial channel connections.** On every edge only the first ``C / K`` channels of the
  input go through the mixed op; the other channels bypass it (through a 2x2 max pool on
  stride-2 edges), the two parts are concatenated and channel-shuffled with ``K`` groups so
  that the next cell sees a different selection. Op weights have ``C / K`` channels.
* **Edge normalisation.** Each node weighs its incoming edges by ``softmax(beta)`` over those
  edges, which stabilises the search against the sampling of channels. The discrete cell is
  derived from ``softmax(alpha) * softmax(beta)``: per node the two edges whose strongest
  non-``none`` op weighs most, and on each its strongest non-``none`` op.

The edges leaving a state share its first ``C / K`` channels, so, as in
:class:`zoo.space.supernet.FastSearchCell`, each source state runs one
:class:`zoo.space.edge_bundle.EdgeBundle` for all its edges. Because a mixed op's weights
sum to one, ``edge_weights()`` hands the cells ``beta * softmax(alpha)`` and a cell recovers
``beta`` as its row sums; the bypassed channels of a node are ``sum_j beta_j * bypass_j``
(shuffling is linear, so it is applied once per node).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.space.supernet import CellBase, SuperNet, add_source_bundles, edge_index, num_edges


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel ``g * (C / groups) + i`` moves to ``i * groups + g`` (ShuffleNet, Zhang et al. 2018)."""
    if groups == 1:
        return x
    N, C, H, W = x.shape
    return x.reshape(N, groups, C // groups, H, W).transpose(1, 2).reshape(N, C, H, W)


class PCSearchCell(CellBase):
    """A DARTS search cell with partial channel connections; ``forward(s0, s1, weights)``.

    ``weights`` is (edges, ops) = ``beta * softmax(alpha)`` per edge (see module docstring).
    """

    def __init__(
        self,
        steps: int,
        multiplier: int,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        primitives: Sequence[str],
        partial_channels: int = 4,
    ) -> None:
        if C % partial_channels:
            raise ValueError(f"partial_channels={partial_channels} must divide the cell's channels ({C})")
        super().__init__(steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev, primitives)
        self.K, self.C = partial_channels, C
        add_source_bundles(self, steps, C // partial_channels, reduction, primitives)

    def build_edges(self, C: int, reduction: bool, primitives: Sequence[str]) -> None:
        pass  # the bundles need K, known only after the base constructor: added in __init__

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        Cp = self.C // self.K
        betas = weights.sum(dim=1)
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        mixed: list[torch.Tensor | None] = [None] * self.steps
        bypass: list[torch.Tensor | None] = [None] * self.steps
        for j, bundle in enumerate(self.bundles):
            if j >= 2:
                states.append(self._node(mixed[j - 2], bypass[j - 2]))  # type: ignore[arg-type]
            h = states[j]
            rows = getattr(self, f"rows_{j}")
            outs = bundle(h[:, :Cp].contiguous(memory_format=torch.channels_last), weights.index_select(0, rows)).unbind(0)
            rest = None
            if self.K > 1:
                rest = h[:, Cp:] if bundle.stride == 1 else F.max_pool2d(h[:, Cp:], 2, 2, ceil_mode=True)
            b = betas.index_select(0, rows)
            for e, (out, i) in enumerate(zip(outs, self.targets[j])):
                out = out.permute(0, 3, 1, 2)
                mixed[i] = out if mixed[i] is None else mixed[i] + out
                if rest is not None:
                    part = b[e] * rest
                    bypass[i] = part if bypass[i] is None else bypass[i] + part
        states.append(self._node(mixed[-1], bypass[-1]))  # type: ignore[arg-type]
        return torch.cat(states[-self.multiplier :], dim=1)

    def _node(self, mixed: torch.Tensor, bypass: torch.Tensor | None) -> torch.Tensor:
        return mixed if bypass is None else channel_shuffle(torch.cat([mixed, bypass], dim=1), self.K)

    @torch.no_grad()
    def load_mixed_ops(self, mixed_ops: Sequence[nn.Module], preprocess0: nn.Module, preprocess1: nn.Module) -> None:
        """Copies per-edge mixed ops (``C / K`` channels, edge order as in alpha) and the preprocessing."""
        self.preprocess0.load_state_dict(preprocess0.state_dict())
        self.preprocess1.load_state_dict(preprocess1.state_dict())
        for j, bundle in enumerate(self.bundles):
            bundle.load_mixed_ops([mixed_ops[edge_index(i, j)] for i in self.targets[j]])


class PCSuperNet(SuperNet):
    """:class:`SuperNet` with :class:`PCSearchCell` cells and edge-normalisation parameters ``beta``.

    ``arch_parameters()`` = [alpha_normal, alpha_reduce, beta_normal, beta_reduce];
    ``genotype()`` derives the cell from ``softmax(alpha) * softmax(beta)`` as the paper does.
    """

    def __init__(self, *args: Any, partial_channels: int = 4, **kw: Any) -> None:
        C = kw.get("init_channels", args[1] if len(args) > 1 else 16)
        if not (isinstance(partial_channels, int) and partial_channels >= 1 and C % partial_channels == 0):
            raise ValueError(
                f"partial_channels={partial_channels!r} must be a positive integer dividing the supernet's init_channels ({C})"
            )
        kw.pop("cell_cls", None)
        kw.pop("channels_last", None)
        super().__init__(*args, cell_cls=partial(PCSearchCell, partial_channels=partial_channels), channels_last=True, **kw)  # type: ignore[arg-type]
        self.partial_channels = partial_channels
        k = num_edges(self.steps)
        self.beta_normal = nn.Parameter(1e-3 * torch.randn(k))
        self.beta_reduce = nn.Parameter(1e-3 * torch.randn(k))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce, self.beta_normal, self.beta_reduce]

    def edge_betas(self) -> tuple[torch.Tensor, torch.Tensor]:
        """softmax(beta) over the incoming edges of each node, for the normal and the reduction cell."""
        return tuple(
            torch.cat([torch.softmax(b[edge_index(i, 0) : edge_index(i + 1, 0)], 0) for i in range(self.steps)])
            for b in (self.beta_normal, self.beta_reduce)
        )  # type: ignore[return-value]

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``softmax(beta) * softmax(alpha)`` per edge (rows sum to the edge's beta weight)."""
        b_normal, b_reduce = self.edge_betas()
        w_normal, w_reduce = super().edge_weights()
        return b_normal[:, None] * w_normal, b_reduce[:, None] * w_reduce
