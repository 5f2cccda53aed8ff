"""The one-shot segmentation supernet: Auto-DeepLab's trellis of search cells (Liu et al., CVPR 2019).

Every layer ``l`` has a node at each level ``s`` it can reach from the stride-4 stem
(levels ``0..min(l + 1, 3)``); each node is a DARTS search cell (:class:`FastSearchCell`,
or :class:`PCSearchCell` for ``pc_darts``) sharing the cell parameters ``alpha`` with every
other node. The path parameters are

* ``path_beta[l, s]``: logits of node ``(l, s)``'s inputs from layer ``l - 1`` at levels
  ``s - 1``, ``s``, ``s + 1``, softmax-normalised over the sources that exist, so a node
  mixes its inputs as a DARTS mixed op mixes ops;
* ``end_beta[s]``: logits of the last layer's levels, each with its own ASPP head.

A node's input 1 is the ``path_beta``-weighted sum of its resampled sources. Its input 0 (the
layer before) mixes layer ``l - 2``'s nodes with the two-step path weights
``sum_m b[l, s, m] * b[l - 1, m, j]``. The paper instead reads the node at the same level
two layers back, which a discrete path does not have unless it stays at that level; with
two-step weights, one-hot path weights make the supernet compute exactly the discrete
network of that path (tested), so what is searched is what is retrained.

The paper normalises each node's *outgoing* weights and decodes the most probable path of that
Markov chain with the Viterbi algorithm. Here the weights are each node's *incoming* mixture
weights (what makes the exact one-hot equivalence above hold), and the path is the Viterbi path
of those weights taken relative to uniform (:func:`viterbi`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tasks.segmentation.model import ASPP, Decoder, Resample, Stem, level_sizes
from tasks.segmentation.space import LEVELS, SegmentationGenotype, SegmentationSpace, cell_genotype
from zoo.space.pc_supernet import PCSearchCell
from zoo.space.supernet import FastSearchCell, derive_edges, edge_index, num_edges

KINDS = ("darts", "pc_darts")


def levels_at(layer: int) -> list[int]:
    """The levels layer ``layer`` can reach from the stem (layers -2 and -1 are the stem's two level-0 states)."""
    return [0] if layer < 0 else list(range(min(layer + 1, LEVELS - 1) + 1))


def path_mask(layers: int) -> torch.Tensor:
    """(layers, LEVELS, 3) booleans: node (l, s) exists and its source at level ``s + d - 1`` exists in layer ``l - 1``."""
    mask = torch.zeros(layers, LEVELS, 3, dtype=torch.bool)
    for l in range(layers):
        prev = levels_at(l - 1)
        for s in levels_at(l):
            for d in range(3):
                mask[l, s, d] = (s + d - 1) in prev
    return mask


def viterbi(log_transition: torch.Tensor, log_end: torch.Tensor) -> tuple[int, ...]:
    """The Viterbi path from level 0 (the stem) through the trellis, in log space.

    ``log_transition[l, s, d]`` is the log weight of node ``(l, s)``'s input from level ``s + d - 1``
    (``-inf`` where that source does not exist), ``log_end[s]`` the log weight of ending at level
    ``s``. A transition scores its weight relative to uniform, ``log w + log n_in(l, s)`` (``n_in``:
    how many sources the node has), and the end ``log e + log n_end``; the path maximises the sum.
    Relative weights make every path score the same when the weights are uniform, so nodes with
    fewer inputs (at the edges of the trellis) are not favoured for that alone. Ties go to the finer level."""
    T = log_transition.detach().double().cpu()
    E = log_end.detach().double().cpu()
    L = T.shape[0]
    neg = float("-inf")
    score = [neg] * LEVELS
    score[0] = 0.0
    back = [[0] * LEVELS for _ in range(L)]
    for l in range(L):
        new = [neg] * LEVELS
        for s in levels_at(l):
            sources = [(d, s + d - 1) for d in range(3) if 0 <= s + d - 1 < LEVELS and score[s + d - 1] > neg]
            best, arg = neg, sources[0][1]
            for d, k in sources:
                v = score[k] + float(T[l, s, d]) + math.log(len(sources))
                if v > best:
                    best, arg = v, k
            new[s], back[l][s] = best, arg
        score = new
    ends = levels_at(L - 1)
    final = {s: score[s] + float(E[s]) + math.log(len(ends)) for s in ends}
    last = max(ends, key=lambda s: (final[s], -s))
    path = [last]
    for l in range(L - 1, 0, -1):
        path.append(back[l][path[-1]])
    return tuple(reversed(path))


class PathSuperNet(nn.Module):
    """``arch_parameters()`` (alpha, [edge_beta,] path_beta, end_beta), ``weight_parameters()``, ``genotype()``, ``arch_weights()``.

    ``make_cell(C)``, when given, replaces the search cell by any module called as
    ``cell(s0, s1, cell_weights)`` (the tests put discrete cells in to check the path relaxation alone).
    """

    def __init__(
        self,
        space: SegmentationSpace,
        num_classes: int,
        init_channels: int = 4,
        in_chans: int = 3,
        stem_channels: int | None = None,
        aspp_channels: int = 16,
        aspp_rates: Sequence[int] = (2, 4),
        decoder_channels: int = 16,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        kind: str = "darts",
        partial_channels: int = 4,
        make_cell: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"supernet kind {kind!r} is unknown for segmentation; allowed: {', '.join(KINDS)}")
        if kind == "pc_darts" and init_channels % partial_channels:
            raise ValueError(f"partial_channels={partial_channels} must divide the supernet's init_channels ({init_channels})")
        from zoo.models import Normalize

        self.space, self.kind = space, kind
        self.layers, self.steps = space.layers, space.steps
        self.primitives = list(space.primitives)
        self.normalize = Normalize(list(mean), list(std)) if mean is not None and std is not None else nn.Identity()
        C_stem = stem_channels or 4 * init_channels
        self.stem = Stem(in_chans, C_stem)
        mult = self.steps

        def chans(l: int, s: int) -> int:
            return C_stem if l < 0 else mult * init_channels * 2**s

        def search_cell(C: int) -> nn.Module:
            if kind == "pc_darts":
                cell: nn.Module = PCSearchCell(self.steps, mult, C, C, C, False, False, self.primitives, partial_channels=partial_channels)
            else:
                cell = FastSearchCell(self.steps, mult, C, C, C, False, False, self.primitives)
            cell.preprocess0, cell.preprocess1 = nn.Identity(), nn.Identity()
            return cell

        make = make_cell or search_cell
        self.cells, self.pre0, self.pre1 = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for l in range(self.layers):
            for s in levels_at(l):
                C = init_channels * 2**s
                self.cells[f"{l}_{s}"] = make(C)
                for k in levels_at(l - 1):
                    if abs(k - s) <= 1:
                        self.pre1[f"{l}_{s}_{k}"] = Resample(chans(l - 1, k), C, s - k, affine=False)
                for j in levels_at(l - 2):
                    if abs(j - s) <= 2:
                        self.pre0[f"{l}_{s}_{j}"] = Resample(chans(l - 2, j), C, s - j, affine=False)
        last = levels_at(self.layers - 1)
        self.heads = nn.ModuleDict({str(s): ASPP(chans(self.layers - 1, s), aspp_channels, aspp_rates) for s in last})
        self.decoder = Decoder(aspp_channels, C_stem, decoder_channels, num_classes)
        self.register_buffer("mask", path_mask(self.layers), persistent=False)
        end_mask = torch.zeros(LEVELS, dtype=torch.bool)
        end_mask[last] = True
        self.register_buffer("end_mask", end_mask, persistent=False)
        self.alpha = nn.Parameter(1e-3 * torch.randn(num_edges(self.steps), len(self.primitives)))
        self.edge_beta = nn.Parameter(1e-3 * torch.randn(num_edges(self.steps))) if kind == "pc_darts" else None
        self.path_beta = nn.Parameter(1e-3 * torch.randn(self.layers, LEVELS, 3))
        self.end_beta = nn.Parameter(1e-3 * torch.randn(LEVELS))

    # ---- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        out = [self.alpha] + ([self.edge_beta] if self.edge_beta is not None else [])
        return out + [self.path_beta, self.end_beta]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def cell_weights(self) -> torch.Tensor:
        """(edges, ops): softmax(alpha), times PC-DARTS' per-node softmax(edge_beta) for ``pc_darts``."""
        w = torch.softmax(self.alpha, dim=-1)
        if self.edge_beta is None:
            return w
        b = torch.cat([torch.softmax(self.edge_beta[edge_index(i, 0) : edge_index(i + 1, 0)], 0) for i in range(self.steps)])
        return b[:, None] * w

    def log_transition_weights(self) -> torch.Tensor:
        """(layers, LEVELS, 3): log of each node's input weights over the sources that exist (-inf elsewhere)."""
        # rows of nodes that do not exist keep finite logits, so no NaN reaches the output or the gradient
        keep = self.mask | ~self.mask.any(-1, keepdim=True)
        logits = self.path_beta.masked_fill(~keep, float("-inf"))
        return torch.log_softmax(logits, dim=-1).masked_fill(~self.mask, float("-inf"))

    def transition_weights(self) -> torch.Tensor:
        """(layers, LEVELS, 3): each node's input weights over the sources that exist (0 elsewhere)."""
        return self.log_transition_weights().exp()

    def log_end_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.end_beta.masked_fill(~self.end_mask, float("-inf")), dim=-1)

    def end_weights(self) -> torch.Tensor:
        return self.log_end_weights().exp()

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """For the search log: the cell's edge weights, the path's transition and end weights."""
        return {"alpha_normal": self.cell_weights(), "path_transition": self.transition_weights(), "path_end": self.end_weights()}

    # ---- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f2, s0, s1 = self.stem(self.normalize(x))
        sizes = level_sizes(s0.shape[-2:])
        cw = self.cell_weights()
        T = self.transition_weights()
        H: dict[int, dict[int, torch.Tensor]] = {-2: {0: s0}, -1: {0: s1}}
        prev_w: dict[int, dict[int, torch.Tensor]] = {0: {0: torch.ones((), device=x.device)}}  # layer -1's input weights
        for l in range(self.layers):
            H[l], cur_w = {}, {}
            for s in levels_at(l):
                inc = {s + d - 1: T[l, s, d] for d in range(3) if bool(self.mask[l, s, d])}
                b = sum(w * self.pre1[f"{l}_{s}_{k}"](H[l - 1][k], sizes[s]) for k, w in inc.items())
                two: dict[int, torch.Tensor] = {}
                for m, w in inc.items():
                    for j, v in prev_w[m].items():
                        two[j] = two[j] + w * v if j in two else w * v
                a = sum(w * self.pre0[f"{l}_{s}_{j}"](H[l - 2][j], sizes[s]) for j, w in two.items())
                H[l][s] = self.cells[f"{l}_{s}"](a, b, cw)
                cur_w[s] = inc
            prev_w = cur_w
            del H[l - 2]
        E = self.end_weights()
        low = s0
        head = sum(
            E[s] * F.interpolate(self.heads[str(s)](h), size=low.shape[-2:], mode="bilinear", align_corners=False)
            for s, h in H[self.layers - 1].items()
        )
        return self.decoder(head, low, f2, size)  # type: ignore[arg-type]

    # ---- discretisation
    def genotype(self) -> SegmentationGenotype:
        with torch.no_grad():
            normal = derive_edges(self.cell_weights().detach().cpu(), self.steps, self.primitives)
            path = viterbi(self.log_transition_weights(), self.log_end_weights())
        return SegmentationGenotype(cell_genotype(normal), path)
