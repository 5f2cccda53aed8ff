"""Discrete cell networks built from a DARTS :class:`Genotype`.

The evaluation network of Liu et al. (DARTS, ICLR 2019), itself after Zoph et al.
(NASNet, CVPR 2018): a stem, ``layers`` cells with reduction cells at 1/3 and 2/3 of
the depth, an optional auxiliary head at 2/3 depth (Szegedy et al. 2015) and
drop-path regularisation (Larsson et al., FractalNet 2017).

The same :class:`Cell` serves every image task; :class:`CellNetwork` exposes its
stages with a timm-style ``feature_info`` so a detection neck or segmentation decoder
can sit on it (``forward_features`` returns one tensor per stage).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.config_values import NON_NEGATIVE_INT, POSITIVE_INT, check_values
from zoo.space.genotype import Genotype
from zoo.space.ops import OPS, FactorizedReduce, Identity, ReLUConvBN


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zeroes whole samples of a branch with probability ``drop_prob`` (rescaling the rest)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """One discrete cell: two inputs, ``steps`` nodes of two ops each, concat of chosen nodes."""

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.steps = len(edges) // 2
        self.multiplier = len(self.concat)
        self.indices = [src for _, src in edges]
        self.ops = nn.ModuleList(OPS.get(name)(C, 2 if reduction and src < 2 else 1, True) for name, src in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            hs = []
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.indices[k]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[k], Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier on the 2/3-depth features (DARTS' CIFAR head, pooled to 2x2 for any input size)."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def make_stem(kind: str, in_chans: int, C: int, stem_multiplier: int) -> tuple[nn.Module, nn.Module | None, int, int, int]:
    """Returns (stem0, stem1, C_prev_prev, C_prev, reduction) for ``kind`` in {cifar, imagenet}."""
    if kind == "cifar":
        c = stem_multiplier * C
        return nn.Sequential(nn.Conv2d(in_chans, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)), None, c, c, 1
    if kind == "imagenet":
        stem0 = nn.Sequential(
            nn.Conv2d(in_chans, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
        return stem0, stem1, C, C, 8
    raise ValueError(f"stem is {kind!r}; allowed: cifar, imagenet")


def reduction_layers(layers: int, num_reductions: int = 2) -> list[int]:
    """Indices of reduction cells: evenly spaced, 1/3 and 2/3 of the depth for two reductions."""
    return [layers * (k + 1) // (num_reductions + 1) for k in range(num_reductions)]


class CellNetwork(nn.Module):
    """Stacked-cell network (DARTS ``NetworkCIFAR``/``NetworkImageNet``) with timm-style features.

    Args:
        genotype: the DARTS cell genotype.
        num_classes: classifier outputs; 0 builds a feature extractor with no classifier.
        init_channels: C of the first cells (36 for the CIFAR-10 evaluation network).
        layers: number of cells (20 for the CIFAR-10 evaluation network).
        auxiliary: add the auxiliary head at 2/3 depth (used in training only).
        in_chans: image channels.
        stem: ``cifar`` (stride 1, 3C channels) or ``imagenet`` (stride 8).
        drop_path_prob: drop-path probability; may be changed during training.
        num_reductions: number of reduction cells (2 in the papers; more for dense prediction).
    """

    def __init__(
        self,
        genotype: Genotype,
        num_classes: int = 10,
        init_channels: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        in_chans: int = 3,
        stem: str = "cifar",
        stem_multiplier: int = 3,
        drop_path_prob: float = 0.0,
        num_reductions: int = 2,
    ) -> None:
        super().__init__()
        check_values(
            {
                "init_channels": init_channels,
                "layers": layers,
                "in_chans": in_chans,
                "num_classes": num_classes,
                "num_reductions": num_reductions,
            },
            {
                "init_channels": POSITIVE_INT,
                "layers": POSITIVE_INT,
                "in_chans": POSITIVE_INT,
                "num_classes": NON_NEGATIVE_INT,
                "num_reductions": NON_NEGATIVE_INT,
            },
            "",
        )
        self.genotype = genotype
        self.num_classes = num_classes
        self.drop_path_prob = drop_path_prob
        self.stem0, self.stem1, C_pp, C_p, red = make_stem(stem, in_chans, init_channels, stem_multiplier)
        reductions = reduction_layers(layers, num_reductions)
        aux_layer = reductions[-1] if reductions else layers - 1
        C_curr = init_channels
        reduction_prev = stem == "imagenet"
        self.cells = nn.ModuleList()
        self.feature_info: list[dict[str, Any]] = []
        self._stage_ends: list[int] = []
        C_aux = C_p
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                if i > 0:
                    self.feature_info.append({"num_chs": C_p, "reduction": red, "module": f"cells.{i - 1}"})
                    self._stage_ends.append(i - 1)
                C_curr *= 2
                red *= 2
            cell = Cell(genotype, C_pp, C_p, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C_curr
            if i == aux_layer:
                C_aux = C_p
        self.feature_info.append({"num_chs": C_p, "reduction": red, "module": f"cells.{layers - 1}"})
        self._stage_ends.append(layers - 1)
        self.num_features = C_p
        self.aux_head = AuxiliaryHead(C_aux, num_classes) if auxiliary and num_classes > 0 else None
        self._aux_layer = aux_layer
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes) if num_classes > 0 else nn.Identity()

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem0(x)
        if self.stem1 is None:
            return s, s
        return s, self.stem1(s)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One feature map per stage, matching ``feature_info``."""
        s0, s1 = self._stem(x)
        feats = []
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i in self._stage_ends:
                feats.append(s1)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0, s1 = self._stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_layer and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        logits = self.classifier(self.global_pool(s1).flatten(1))
        if aux is not None:
            return logits, aux
        return logits

    def reset_classifier(self, num_classes: int) -> None:
        """timm-style head replacement (for fine-tuning on a different label set)."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if self.aux_head is not None:
            self.aux_head.classifier = nn.Linear(768, num_classes) if num_classes > 0 else nn.Identity()


def count_parameters(model: nn.Module, exclude: tuple[str, ...] = ("aux_head",)) -> int:
    """Parameters of ``model`` outside the submodules named in ``exclude`` (at any depth: the network may
    sit inside a wrapper, e.g. ``net.aux_head``)."""
    return sum(p.numel() for n, p in model.named_parameters() if not set(n.split(".")) & set(exclude))
