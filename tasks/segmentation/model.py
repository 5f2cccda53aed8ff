"""The searched segmentation network of a :class:`~tasks.segmentation.space.SegmentationGenotype`.

As in Auto-DeepLab (Liu et al., CVPR 2019): a stride-4 stem, one cell per layer at the
path's resolution, an ASPP head (Chen et al., DeepLabv3, 2017) on the last layer and a
light DeepLabv3+ decoder (Chen et al., ECCV 2018) that joins the stem's stride-4 and
stride-2 features and restores the input size (any size, odd ones included).

A cell reads the previous layer (input 1) and the layer before it (input 0), each brought
to the cell's level by a :class:`Resample`: ``d`` stride-2 3x3 convolutions to go ``d``
levels coarser, a 1x1 convolution then bilinear resizing to the exact size of a finer
level, a 1x1 convolution at the same level. Level ``k`` has ``init_channels * 2**k``
channels per cell node, so every level costs about the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tasks.segmentation.space import LEVELS, SegmentationGenotype
from zoo.models import MODEL_BUILDERS, Normalize
from zoo.space.network import Cell


def level_sizes(size: Sequence[int]) -> list[tuple[int, int]]:
    """Spatial size of each level given the stem's (level 0) size: each stride-2 conv (k3, p1) gives ceil(n / 2)."""
    h, w = int(size[0]), int(size[1])
    out = []
    for _ in range(LEVELS):
        out.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return out


class Resample(nn.Module):
    """Brings a feature map ``diff`` levels coarser (``diff`` > 0), finer (< 0) or keeps its level, to ``C_out`` channels."""

    def __init__(self, C_in: int, C_out: int, diff: int, affine: bool = True) -> None:
        super().__init__()
        self.diff = diff
        layers: list[nn.Module] = []
        if diff > 0:
            for k in range(diff):
                layers += [
                    nn.ReLU(inplace=False),
                    nn.Conv2d(C_in if k == 0 else C_out, C_out, 3, 2, 1, bias=False),
                    nn.BatchNorm2d(C_out, affine=affine),
                ]
        else:
            layers += [nn.ReLU(inplace=False), nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out, affine=affine)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.body(x)
        if self.diff < 0:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


class Stem(nn.Module):
    """Three 3x3 convolutions to stride 4 (Auto-DeepLab's stem): returns the two level-0 states
    the first layers read (``s0`` after the second conv, ``s1`` after the third)."""

    def __init__(self, in_chans: int, C: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(nn.Conv2d(in_chans, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=True))
        self.conv1 = nn.Sequential(nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
        self.conv2 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stride-2 features, s0, s1)."""
        f2 = self.conv0(x)
        s0 = self.conv1(f2)
        return f2, s0, self.conv2(s0)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 conv, 3x3 convs at ``rates``, image pooling; concatenated and projected."""

    def __init__(self, C_in: int, C: int, rates: Sequence[int] = (2, 4)) -> None:
        super().__init__()

        def cbr(k: int, rate: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(C_in, C, k, padding=rate * (k // 2), dilation=rate, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=True)
            )

        self.branches = nn.ModuleList([cbr(1)] + [cbr(3, int(r)) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(C_in, C, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(C * (len(self.branches) + 1), C, 1, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, 1))


class Decoder(nn.Module):
    """DeepLabv3+'s decoder, one step further: the head's features resized to stride 4 and joined with the
    stem's stride-4 features (a 3x3 conv), then resized to stride 2 and joined with the stem's stride-2
    features (another 3x3 conv), the classifier, bilinear to the input size. The stride-2 step keeps the
    edges of small objects (nuclei a few pixels wide) that a stride-4 output blurs."""

    def __init__(self, C_head: int, C_low: int, C: int, num_classes: int, low_channels: int = 16, fine_channels: int = 8) -> None:
        super().__init__()
        self.low = nn.Sequential(nn.Conv2d(C_low, low_channels, 1, bias=False), nn.BatchNorm2d(low_channels), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(nn.Conv2d(C_head + low_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=True))
        self.fine = nn.Sequential(nn.Conv2d(C_low, fine_channels, 1, bias=False), nn.BatchNorm2d(fine_channels), nn.ReLU(inplace=True))
        self.refine = nn.Sequential(nn.Conv2d(C + fine_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU(inplace=True))
        self.classifier = nn.Conv2d(C, num_classes, 1)

    def forward(self, head: torch.Tensor, low: torch.Tensor, fine: torch.Tensor, out_size: Sequence[int]) -> torch.Tensor:
        head = F.interpolate(head, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([head, self.low(low)], 1))
        x = F.interpolate(x, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine(torch.cat([x, self.fine(fine)], 1))
        return F.interpolate(self.classifier(x), size=tuple(out_size), mode="bilinear", align_corners=False)

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Conv2d(self.classifier.in_channels, num_classes, 1)


def path_cell(genotype: SegmentationGenotype, C: int) -> Cell:
    """One layer's discrete cell at ``C`` channels per node; its inputs arrive already resampled to ``C`` (so no preprocessing)."""
    cell = Cell(genotype.cell, C, C, C, reduction=False, reduction_prev=False)
    cell.preprocess0, cell.preprocess1 = nn.Identity(), nn.Identity()
    return cell


class SegmentationNet(nn.Module):
    """The discrete network: normalisation, stem, one cell per path layer, ASPP, decoder; logits at the input size.

    Args:
        genotype: cell + path.
        num_classes: output classes (logits per pixel).
        init_channels: channels per cell node at level 0 (stride 4); ``2**k`` times that at level ``k``.
        in_chans: image channels.
        stem_channels: the stem's width (default ``4 * init_channels``).
        aspp_channels, aspp_rates: the head.
        decoder_channels: the decoder's 3x3 conv width.
        mean, std: per-channel normalisation baked into the model (it takes images in [0, 1]).
        drop_path_prob: drop-path on the cells' ops during training.
    """

    def __init__(
        self,
        genotype: SegmentationGenotype,
        num_classes: int,
        init_channels: int = 8,
        in_chans: int = 3,
        stem_channels: int | None = None,
        aspp_channels: int = 32,
        aspp_rates: Sequence[int] = (2, 4),
        decoder_channels: int = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.num_classes = num_classes
        self.drop_path_prob = drop_path_prob
        self.normalize = Normalize(list(mean), list(std)) if mean is not None and std is not None else nn.Identity()
        C_stem = stem_channels or 4 * init_channels
        self.stem = Stem(in_chans, C_stem)
        mult = len(genotype.cell.normal_concat)
        out_ch = lambda lv: mult * init_channels * 2**lv  # noqa: E731
        self.cells = nn.ModuleList()
        self.pre0 = nn.ModuleList()
        self.pre1 = nn.ModuleList()
        levels = [0, 0, *genotype.path]  # the stem's two states, then each layer
        chans = [C_stem, C_stem] + [out_ch(lv) for lv in genotype.path]
        for l, lv in enumerate(genotype.path):
            C = init_channels * 2**lv
            self.pre0.append(Resample(chans[l], C, lv - levels[l]))
            self.pre1.append(Resample(chans[l + 1], C, lv - levels[l + 1]))
            self.cells.append(path_cell(genotype, C))
        self.feature_info = [
            {"num_chs": C_stem, "reduction": 2, "module": "stem.conv0"},
            {"num_chs": C_stem, "reduction": 4, "module": "stem.conv1"},
        ]
        self.aspp = ASPP(out_ch(genotype.path[-1]), aspp_channels, aspp_rates)
        self.decoder = Decoder(aspp_channels, C_stem, decoder_channels, num_classes)

    def forward_layers(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Runs stem and cells on a normalised input: (stride-2 stem features, [s0, s1, layer 0, ..., layer L-1])."""
        f2, s0, s1 = self.stem(x)
        sizes = level_sizes(s0.shape[-2:])
        states = [s0, s1]
        for l, lv in enumerate(self.genotype.path):
            a = self.pre0[l](states[l], sizes[lv])
            b = self.pre1[l](states[l + 1], sizes[lv])
            states.append(self.cells[l](a, b, self.drop_path_prob if self.training else 0.0))
        return f2, states

    def stage_features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features of a normalised input by stride: the stem at 2 and 4, then per level of the path the
        output of the last layer at that level (a level the path never visits is absent)."""
        f2, states = self.forward_layers(x)
        out = {2: f2, 4: states[1]}
        for lv, h in zip(self.genotype.path, states[2:]):
            out[4 * 2**lv] = h
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f2, states = self.forward_layers(self.normalize(x))
        return self.decoder(self.aspp(states[-1]), states[0], f2, size)

    def reset_classifier(self, num_classes: int) -> None:
        """A new classifier for another label set (fine-tuning keeps everything else)."""
        self.num_classes = num_classes
        self.decoder.reset_classifier(num_classes)


@MODEL_BUILDERS.register("segmentation")
def create_segmenter(
    arch: Any,
    num_classes: int = 2,
    init_channels: int = 8,
    in_chans: int = 3,
    stem_channels: int | None = None,
    aspp_channels: int = 32,
    aspp_rates: Sequence[int] = (2, 4),
    decoder_channels: int = 32,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    drop_path_prob: float = 0.0,
    **_: Any,
) -> SegmentationNet:
    """The searched segmenter of a ``segmentation`` genotype (its JSON or the object); ``layers`` is the path's length."""
    g = SegmentationGenotype.from_json(arch) if isinstance(arch, dict) else arch
    if not isinstance(g, SegmentationGenotype):
        from zoo.space.genotype import GenotypeError

        raise GenotypeError(
            f"task segmentation builds segmentation genotypes (cell + path), got a {getattr(g, 'space', type(g).__name__)!r} genotype"
        )
    return SegmentationNet(
        g,
        num_classes=num_classes,
        init_channels=init_channels,
        in_chans=in_chans,
        stem_channels=stem_channels,
        aspp_channels=aspp_channels,
        aspp_rates=tuple(aspp_rates),
        decoder_channels=decoder_channels,
        mean=mean,
        std=std,
        drop_path_prob=drop_path_prob,
    )
