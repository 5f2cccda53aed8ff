"""The one-shot detection supernet: the DARTS :class:`SuperNet` backbone (or, for ``pc_darts``,
the partially-connected :class:`PCSuperNet`) and/or the relaxed :class:`MixedNeck`, then the
FCOS head; the part that is not searched is the fixed one. Partial channels apply to the
backbone cells only: the neck is relaxed as in DARTS for both kinds.

:class:`MixedNeck` is the continuous relaxation of the NAS-FPN neck (:class:`NasFpnSpace`) for
DARTS-style one-shot search (Liu et al., ICLR 2019): softmax weights over each cell's two inputs,
its op and (for the intermediate cells) its output level, whose candidate outputs are all computed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from tasks.detection.model import Detector, HeadOutput, Neck, NeckInput, conv_block, level_sizes, merge, resample
from tasks.detection.space import NECK_OPS, DetectionGenotype, DetectionSpace, NasFpnSpace, NeckGenotype
from zoo.space.network import CellNetwork
from zoo.space.pc_supernet import PCSuperNet
from zoo.space.supernet import SuperNet

KINDS = ("darts", "pc_darts")


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
        self.posts = nn.ModuleList(conv_block(C, False) for _ in range(cells))
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


class DetectionSuperNet(Detector):
    """``arch_parameters()`` (the searched parts' alphas), ``weight_parameters()`` and ``genotype()``."""

    def __init__(
        self,
        space: DetectionSpace,
        num_classes: int,
        init_channels: int,
        layers: int,
        neck_channels: int,
        head_convs: int,
        mean: Sequence[float],
        std: Sequence[float],
        in_chans: int = 3,
        multiplier: int = 4,
        kind: str = "darts",
        partial_channels: int = 4,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"supernet kind {kind!r} is unknown for detection; allowed: {', '.join(KINDS)}")
        self.target = space.target
        self.space = space
        if self.target in ("backbone", "both"):
            args = dict(
                num_classes=0,
                init_channels=init_channels,
                layers=layers,
                steps=space.steps,
                multiplier=multiplier,
                in_chans=in_chans,
                stem="imagenet",
                primitives=space.primitives,
            )
            backbone: nn.Module = PCSuperNet(partial_channels=partial_channels, **args) if kind == "pc_darts" else SuperNet(**args)
        else:
            backbone = CellNetwork(
                space.fixed_backbone, num_classes=0, init_channels=init_channels, layers=layers, in_chans=in_chans, stem="imagenet"
            )
        ns = space.neck_space
        n_in = min(ns.L, len(backbone.feature_info))
        chans = [int(i["num_chs"]) for i in backbone.feature_info][-n_in:]
        if self.target in ("neck", "both"):
            neck: nn.Module = MixedNeck(chans, neck_channels, ns.num_cells, ns.min_level, ns.max_level, ns.ops)
        else:
            neck = Neck(space.fixed_neck, chans, neck_channels)
        strides = [2**lv for lv in range(ns.min_level, ns.max_level + 1)]
        super().__init__(backbone, neck, num_classes, strides, head_convs, mean, std, backbone_levels=n_in)

    def arch_parameters(self) -> list[nn.Parameter]:
        out: list[nn.Parameter] = []
        if self.target in ("backbone", "both"):
            out += self.backbone.arch_parameters()  # type: ignore[operator]
        if self.target in ("neck", "both"):
            out += self.neck.arch_parameters()  # type: ignore[operator]
        return out

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def arch_weights(self) -> dict[str, Any]:
        """For the DARTS log: the searched parts' weights by name (``backbone_alpha_normal``, ...,
        ``neck_in1``, ``neck_op``, ...; see :meth:`MixedNeck.arch_weights`)."""
        out: dict[str, Any] = {}
        if self.target in ("backbone", "both"):
            out.update({f"backbone_{k}": v for k, v in self.backbone.arch_weights().items()})  # type: ignore[operator]
        if self.target in ("neck", "both"):
            out.update(self.neck.arch_weights())  # type: ignore[operator]
        return out

    def genotype(self) -> DetectionGenotype:
        backbone = self.backbone.genotype() if self.target in ("backbone", "both") else self.space.fixed_backbone  # type: ignore[operator]
        neck = self.neck.genotype() if self.target in ("neck", "both") else self.space.fixed_neck  # type: ignore[operator]
        return DetectionGenotype(backbone, neck)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        return super().forward(x)
