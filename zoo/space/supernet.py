"""Continuous relaxation of the cell search space (Liu et al., "DARTS", ICLR 2019).

Each edge of a search cell is a mixed op: the softmax(alpha)-weighted sum of every
candidate op. :class:`SuperNet` stacks search cells like :class:`CellNetwork` and owns the
architecture parameters ``alpha_normal`` and ``alpha_reduce`` (one row per edge, one
column per op). :meth:`SuperNet.genotype` derives the discrete cell as in the paper: per
node keep the two incoming edges whose strongest non-``none`` op weighs most, and on each
the strongest non-``none`` op.

Two cells compute the same function:

* :class:`SearchCell` / :class:`MixedOp`: the textbook form, one module per op per edge.
* :class:`FastSearchCell` (the default): the edges leaving each state run as one
  :class:`zoo.space.edge_bundle.EdgeBundle` (shared ReLU and pools, stacked convs, a fused
  BN + weighted sum, ``none`` skipped), several times faster and leaner in memory.
  :func:`load_textbook_weights` copies a textbook supernet's weights into a fast one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from zoo.space.edge_bundle import EdgeBundle
from zoo.space.genotype import Genotype
from zoo.space.network import make_stem, reduction_layers
from zoo.space.ops import DARTS_OPS, OPS, FactorizedReduce, ReLUConvBN


class MixedOp(nn.Module):
    """Softmax-weighted sum of all candidate ops on one edge."""

    def __init__(self, C: int, stride: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.primitives = list(primitives)
        self._ops = nn.ModuleList()
        for name in self.primitives:
            op = OPS.get(name)(C, stride, False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops))  # type: ignore[return-value]


def make_preprocess(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
    """A search cell's input adapters (BN without affine, as in DARTS): both cell inputs to ``C`` channels
    at this cell's resolution (the older one is halved when the previous cell reduced)."""
    pre0 = FactorizedReduce(C_prev_prev, C, affine=False) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
    return pre0, ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)


def add_source_bundles(cell: nn.Module, steps: int, C: int, reduction: bool, primitives: Sequence[str]) -> None:
    """Gives ``cell`` one :class:`EdgeBundle` per source state (``cell.bundles``), the nodes each feeds
    (``cell.targets``) and the alpha rows of those edges (buffers ``rows_j``)."""
    cell.bundles = nn.ModuleList()
    cell.targets = []
    for j in range(steps + 1):  # the last node feeds no edge inside the cell
        nodes = [i for i in range(steps) if j < i + 2]
        cell.targets.append(nodes)
        cell.register_buffer(f"rows_{j}", torch.tensor([edge_index(i, j) for i in nodes]), persistent=False)
        cell.bundles.append(EdgeBundle(C, 2 if reduction and j < 2 else 1, len(nodes), primitives))


def stack_cells(
    make_cell: Callable[[int, int, int, bool, bool], nn.Module],
    layers: int,
    num_reductions: int,
    init_channels: int,
    C_pp: int,
    C_p: int,
    reduction: int,
    reduction_prev: bool,
    multiplier: int,
) -> tuple[nn.ModuleList, list[dict[str, Any]], list[int], int]:
    """Stacks ``layers`` cells as :class:`zoo.space.network.CellNetwork` does (channels double at each
    reduction); ``make_cell(C_pp, C_p, C, reduction, reduction_prev)``. Returns the cells, the
    timm-style ``feature_info``, the index of the last cell of each stage and the output channels."""
    reductions = reduction_layers(layers, num_reductions)
    C_curr = init_channels
    cells = nn.ModuleList()
    feature_info: list[dict[str, Any]] = []
    stage_ends: list[int] = []
    for i in range(layers):
        is_reduction = i in reductions
        if is_reduction:
            if i > 0:
                feature_info.append({"num_chs": C_p, "reduction": reduction, "module": f"cells.{i - 1}"})
                stage_ends.append(i - 1)
            C_curr *= 2
            reduction *= 2
        cells.append(make_cell(C_pp, C_p, C_curr, is_reduction, reduction_prev))
        reduction_prev = is_reduction
        C_pp, C_p = C_p, multiplier * C_curr
    feature_info.append({"num_chs": C_p, "reduction": reduction, "module": f"cells.{layers - 1}"})
    stage_ends.append(layers - 1)
    return cells, feature_info, stage_ends, C_p


class CellBase(nn.Module):
    """What every search cell shares: ``steps`` nodes, the last ``multiplier`` concatenated, the
    reduction flag and the two input adapters; subclasses add their mixed edges in :meth:`build_edges`."""

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
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.C = C
        self.steps = steps
        self.multiplier = multiplier
        self.preprocess0, self.preprocess1 = make_preprocess(C_prev_prev, C_prev, C, reduction_prev)
        self.build_edges(C, reduction, primitives)

    def build_edges(self, C: int, reduction: bool, primitives: Sequence[str]) -> None:
        raise NotImplementedError


class SearchCell(CellBase):
    """A cell whose node i sums a MixedOp over every earlier state (2 + i edges)."""

    def build_edges(self, C: int, reduction: bool, primitives: Sequence[str]) -> None:
        self._ops = nn.ModuleList()
        for i in range(self.steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(C, 2 if reduction and j < 2 else 1, primitives))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)  # type: ignore[arg-type]
        return torch.cat(states[-self.multiplier :], dim=1)


def num_edges(steps: int) -> int:
    return sum(2 + i for i in range(steps))


def edge_index(node: int, source: int) -> int:
    """Row of edge ``source -> node`` in alpha (nodes in order, each with its 2 + node inputs in order)."""
    return sum(2 + i for i in range(node)) + source


class FastSearchCell(CellBase):
    """:class:`SearchCell`'s function, computed per source state instead of per edge.

    State ``j`` (0 and 1 are the preprocessed inputs, ``i + 2`` is node ``i``) feeds the
    nodes ``i >= j - 1``; once it is known, one :class:`EdgeBundle` computes all of its
    outgoing mixed edges at once and each node accumulates its inputs. Same constructor
    and ``forward(s0, s1, weights)`` as :class:`SearchCell`.
    """

    def build_edges(self, C: int, reduction: bool, primitives: Sequence[str]) -> None:
        add_source_bundles(self, self.steps, C, reduction, primitives)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        nodes: list[torch.Tensor | None] = [None] * self.steps
        for j, bundle in enumerate(self.bundles):
            if j >= 2:
                states.append(nodes[j - 2])  # type: ignore[arg-type]
            outs = bundle(states[j], weights.index_select(0, getattr(self, f"rows_{j}"))).unbind(0)
            for out, i in zip(outs, self.targets[j]):
                out = out.permute(0, 3, 1, 2)  # (N, C, H, W) view of channels-last memory
                nodes[i] = out if nodes[i] is None else nodes[i] + out
        states.append(nodes[-1])  # type: ignore[arg-type]
        return torch.cat(states[-self.multiplier :], dim=1)

    @torch.no_grad()
    def load_textbook(self, cell: SearchCell) -> None:
        """Copies the weights and BN statistics of a :class:`SearchCell` of the same shape."""
        self.preprocess0.load_state_dict(cell.preprocess0.state_dict())
        self.preprocess1.load_state_dict(cell.preprocess1.state_dict())
        for j, bundle in enumerate(self.bundles):
            bundle.load_mixed_ops([cell._ops[edge_index(i, j)] for i in self.targets[j]])


@torch.no_grad()
def load_textbook_weights(fast: SuperNet, textbook: SuperNet) -> None:
    """Makes ``fast`` (built with :class:`FastSearchCell`) compute what ``textbook`` (:class:`SearchCell`) does."""
    state = {k: v for k, v in textbook.state_dict().items() if not k.startswith("cells.")}
    missing, unexpected = fast.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("cells.") for k in missing), (missing, unexpected)
    for f_cell, t_cell in zip(fast.cells, textbook.cells):
        f_cell.load_textbook(t_cell)  # type: ignore[operator]


class SuperNet(nn.Module):
    """DARTS search network with architecture parameters.

    ``forward_features`` gives one tensor per stage (timm-style ``feature_info``), so
    a task can put its own neck or head on the supernet as on a discrete backbone.
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
        cell_cls: type[nn.Module] = FastSearchCell,
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        # activations in channels-last memory (default with FastSearchCell, whose kernels expect it)
        self.channels_last = cell_cls is FastSearchCell if channels_last is None else channels_last
        self.primitives = list(primitives)
        if "none" in self.primitives and self.primitives[0] != "none":
            raise ValueError("primitives: 'none' must come first when present")
        self.steps = steps
        self.multiplier = multiplier
        self.stem0, self.stem1, C_pp, C_p, red = make_stem(stem, in_chans, init_channels, stem_multiplier)
        self.cells, self.feature_info, self._stage_ends, C_p = stack_cells(
            lambda c_pp, c_p, c, red_, red_prev: cell_cls(steps, multiplier, c_pp, c_p, c, red_, red_prev, self.primitives),
            layers,
            num_reductions,
            init_channels,
            C_pp,
            C_p,
            red,
            stem == "imagenet",
            multiplier,
        )
        self.num_features = C_p
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes) if num_classes > 0 else nn.Identity()
        k = num_edges(steps)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(k, len(self.primitives)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(k, len(self.primitives)))

    # ---- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.softmax(self.alpha_normal, dim=-1), torch.softmax(self.alpha_reduce, dim=-1)

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """The architecture weights by name, as the search log records them (rows: edges, columns: ops)."""
        w_normal, w_reduce = self.edge_weights()
        return {"alpha_normal": w_normal, "alpha_reduce": w_reduce}

    # ---- cost
    def expected_params(self, uniform: bool = False) -> torch.Tensor:
        """The parameters the cells' mixed edges hold in expectation under the architecture weights (each cell,
        edge and op: its weight times the parameters of that op at the cell's width and the edge's stride),
        differentiable in alpha: the cost term of ProxylessNAS (Cai, Zhu & Han, ICLR 2019) and FBNet (Wu et al.,
        CVPR 2019) with parameters for latency. ``uniform``: under equal weights on every op (the reference)."""
        w_normal, w_reduce = self.edge_weights()
        total = w_normal.new_zeros(())
        for cell in self.cells:
            costs = _edge_op_params(self.primitives, int(cell.C), self.steps, bool(cell.reduction)).to(w_normal)
            weights = torch.full_like(costs, 1.0 / costs.shape[1]) if uniform else (w_reduce if cell.reduction else w_normal)
            total = total + (weights * costs).sum()
        return total

    # ---- forward
    def _run(self, x: torch.Tensor, collect: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        w_normal, w_reduce = self.edge_weights()
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = self.stem0(x)
        s1 = s0 if self.stem1 is None else self.stem1(s0)
        feats = []
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
            if collect and i in self._stage_ends:
                feats.append(s1)
        return s1, feats

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._run(x, collect=True)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self._run(x, collect=False)
        return self.classifier(self.global_pool(out).flatten(1))

    # ---- discretisation
    def genotype(self) -> Genotype:
        w_normal, w_reduce = (w.detach().cpu() for w in self.edge_weights())
        concat = tuple(range(2 + self.steps - self.multiplier, self.steps + 2))
        return Genotype(
            normal=derive_edges(w_normal, self.steps, self.primitives),
            normal_concat=concat,
            reduce=derive_edges(w_reduce, self.steps, self.primitives),
            reduce_concat=concat,
        )


_OP_PARAMS: dict[tuple[str, int, int], int] = {}


def _edge_op_params(primitives: Sequence[str], C: int, steps: int, reduction: bool) -> torch.Tensor:
    """(edges, ops): the parameters of each op on each edge of a cell of width ``C`` (stride 2 on a reduction
    cell's edges from its two inputs), counted once per op, width and stride on fresh modules."""
    rows = []
    for i in range(steps):
        for j in range(2 + i):
            stride = 2 if reduction and j < 2 else 1
            row = []
            for name in primitives:
                key = (name, C, stride)
                if key not in _OP_PARAMS:
                    _OP_PARAMS[key] = sum(p.numel() for p in OPS.get(name)(C, stride, True).parameters())
                row.append(float(_OP_PARAMS[key]))
            rows.append(row)
    return torch.tensor(rows)


def derive_edges(weights: torch.Tensor, steps: int, primitives: Sequence[str], zero: str = "none") -> tuple[tuple[str, int], ...]:
    """DARTS discretisation: top-2 incoming edges per node by their strongest op other than ``zero``."""
    none = primitives.index(zero) if zero in primitives else -1
    gene: list[tuple[str, int]] = []
    start = 0
    for i in range(steps):
        n = 2 + i
        W = weights[start : start + n].clone()
        if none >= 0:
            W[:, none] = -1.0
        best_per_edge = W.max(dim=1).values
        edges = sorted(range(n), key=lambda j: -float(best_per_edge[j]))[:2]
        for j in edges:
            gene.append((primitives[int(W[j].argmax())], j))
        start += n
    return tuple(gene)
