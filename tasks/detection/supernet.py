"""The one-shot detection supernet: the DARTS :class:`SuperNet` backbone (or, for ``pc_darts``,
the partially-connected :class:`PCSuperNet`) and/or the relaxed :class:`MixedNeck`, then the
FCOS head; the part that is not searched is the fixed one. Partial channels apply to the
backbone cells only: the neck is relaxed as in DARTS for both kinds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from tasks.detection.model import Detector, HeadOutput
from tasks.detection.space import DetectionGenotype, DetectionSpace
from zoo.space.fpn import MixedNeck, Neck
from zoo.space.network import CellNetwork
from zoo.space.pc_supernet import PCSuperNet
from zoo.space.supernet import SuperNet

KINDS = ("darts", "pc_darts")


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
        ``neck_in1``, ``neck_op``, ...; see :meth:`zoo.space.fpn.MixedNeck.arch_weights`)."""
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
