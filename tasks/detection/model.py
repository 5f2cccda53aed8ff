"""Detection models: a backbone with multi-scale features -> a feature-pyramid neck -> an
anchor-free FCOS head (Tian, Shen, Chen & He, "FCOS: Fully Convolutional One-Stage Object
Detection", ICCV 2019).

:class:`Detector` takes images in [0, 1] (normalisation inside), returns the raw head
outputs in training (:class:`HeadOutput`) and decodes boxes with :meth:`Detector.predict`
(score = sqrt(class probability x centerness), then class-aware NMS from torchvision).
:func:`create_detector` builds the searched model from a ``detection`` genotype (a
:class:`zoo.space.network.CellNetwork` backbone with the ``imagenet`` stem and a
:class:`Neck`); :func:`create_baseline` builds the fixed reference, timm's
``resnet18`` features + torchvision's ``FeaturePyramidNetwork`` with the same head.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms, clip_boxes_to_image

from tasks.detection.space import NECK_OPS, NeckGenotype
from zoo.models import MODEL_BUILDERS


# ---------------------------------------------------------------- the NAS-FPN neck (tasks.detection.space.NeckGenotype)
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


def conv_block(C: int, affine: bool) -> nn.Module:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C, affine=affine))


class MergingCell(nn.Module):
    """Resample two inputs to the output size, merge with ``op``, then ReLU-conv3x3-BN."""

    def __init__(self, op: str, C: int) -> None:
        super().__init__()
        if op not in NECK_OPS:
            raise ValueError(f"neck op {op!r} is unknown; allowed: {', '.join(NECK_OPS)}")
        self.op = op
        self.post = conv_block(C, True)

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


@dataclass
class HeadOutput:
    """Head outputs flattened over levels: ``cls`` (N, P, K) logits, ``reg`` (N, P, 4)
    distances (left, top, right, bottom) in pixels, ``ctr`` (N, P) centerness logits,
    ``points`` (P, 2) pixel centres (x, y) and ``strides`` (P,)."""

    cls: torch.Tensor
    reg: torch.Tensor
    ctr: torch.Tensor
    points: torch.Tensor
    strides: torch.Tensor


def _groups(C: int) -> int:
    return math.gcd(C, 8)


class FCOSHead(nn.Module):
    """Shared per-level towers (conv3x3 + GroupNorm + ReLU), class logits, box distances
    (``relu(scale_l * x) * stride``, one learnable scale per level) and centerness on the box tower."""

    def __init__(self, C: int, num_classes: int, num_levels: int, convs: int = 2, prior: float = 0.01) -> None:
        super().__init__()

        def tower() -> nn.Sequential:
            layers: list[nn.Module] = []
            for _ in range(convs):
                layers += [nn.Conv2d(C, C, 3, padding=1), nn.GroupNorm(_groups(C), C), nn.ReLU(inplace=True)]
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(C, num_classes, 3, padding=1)
        self.box_pred = nn.Conv2d(C, 4, 3, padding=1)
        self.centerness = nn.Conv2d(C, 1, 3, padding=1)
        self.scales = nn.Parameter(torch.ones(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior) / prior))
        self.num_classes = num_classes

    def forward(self, feats: Sequence[torch.Tensor], strides: Sequence[int]) -> HeadOutput:
        cls, reg, ctr, points, point_strides = [], [], [], [], []
        for i, (f, s) in enumerate(zip(feats, strides)):
            n, _, h, w = f.shape
            c = self.cls_tower(f)
            b = self.box_tower(f)
            cls.append(self.cls_logits(c).flatten(2).transpose(1, 2))
            reg.append((torch.relu(self.scales[i] * self.box_pred(b)) * s).flatten(2).transpose(1, 2))
            ctr.append(self.centerness(b).flatten(2).squeeze(1))
            ys, xs = torch.meshgrid(torch.arange(h, device=f.device), torch.arange(w, device=f.device), indexing="ij")
            points.append(torch.stack([xs.flatten(), ys.flatten()], 1).to(f.dtype) * s + s // 2)
            point_strides.append(torch.full((h * w,), float(s), device=f.device))
        return HeadOutput(torch.cat(cls, 1), torch.cat(reg, 1), torch.cat(ctr, 1), torch.cat(points), torch.cat(point_strides))


def distances_to_boxes(points: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """(x, y) points and (l, t, r, b) distances -> (x1, y1, x2, y2) boxes."""
    return torch.cat([points - reg[..., :2], points + reg[..., 2:]], dim=-1)


class Detector(nn.Module):
    """``normalize -> backbone.forward_features -> neck -> FCOS head``.

    Args:
        backbone: a module with ``forward_features(x) -> list`` whose last ``len(levels_in)``
            maps are the neck's inputs.
        neck: maps the backbone levels to ``num_levels`` maps of ``neck.out_channels`` channels.
        strides: the stride of each neck output.
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        num_classes: int,
        strides: Sequence[int],
        head_convs: int = 2,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        backbone_levels: int = 3,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.strides = [int(s) for s in strides]
        self.backbone_levels = backbone_levels
        self.head = FCOSHead(int(neck.out_channels), num_classes, len(self.strides), head_convs)
        self.num_classes = num_classes
        mean = list(mean) if mean is not None else [0.0, 0.0, 0.0]
        std = list(std) if std is not None else [1.0, 1.0, 1.0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone.forward_features((x - self.mean) / self.std)
        return self.neck(list(feats)[-self.backbone_levels :])

    def forward(self, x: torch.Tensor) -> HeadOutput:
        return self.head(self.features(x), self.strides)

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, score_thresh: float = 0.05, nms_iou: float = 0.6, max_det: int = 100, pre_nms: int = 1000
    ) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (n, 4) xyxy pixels, ``scores`` (n,), ``labels`` (n,)."""
        return decode(self(x), x.shape[-2:], score_thresh, nms_iou, max_det, pre_nms)


def dense_predictions(out: HeadOutput, image_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every location's ``boxes`` (N, P, 4) xyxy pixels clipped to the image and per-class
    ``scores`` (N, P, K) = sqrt(sigmoid(cls) * sigmoid(centerness)): all of :func:`decode`
    before its score threshold and NMS."""
    scores = torch.sqrt(torch.sigmoid(out.cls) * torch.sigmoid(out.ctr).unsqueeze(-1))
    boxes = clip_boxes_to_image(distances_to_boxes(out.points.unsqueeze(0), out.reg), tuple(int(v) for v in image_size))
    return boxes, scores


class DenseDetector(nn.Module):
    """A :class:`Detector` whose forward returns plain tensors ``(boxes, scores)`` of
    :func:`dense_predictions`, for ONNX / TorchScript consumers; they apply the score
    threshold and class-aware NMS themselves (as :func:`decode` does)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dense_predictions(self.detector(x), x.shape[-2:])


def decode(
    out: HeadOutput, image_size: Sequence[int], score_thresh: float = 0.05, nms_iou: float = 0.6, max_det: int = 100, pre_nms: int = 1000
) -> list[dict[str, torch.Tensor]]:
    boxes, scores = dense_predictions(out, image_size)  # (N, P, 4), (N, P, K)
    K = scores.shape[-1]
    results = []
    for i in range(scores.shape[0]):
        s = scores[i].flatten()
        keep = torch.nonzero(s > score_thresh).squeeze(1)
        if keep.numel() > pre_nms:
            keep = keep[s[keep].topk(pre_nms).indices]
        pts, labels = keep // K, keep % K
        b, sc = boxes[i][pts], s[keep]
        valid = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, sc, labels = b[valid], sc[valid], labels[valid]
        kept = batched_nms(b, sc, labels, nms_iou)[:max_det]
        results.append({"boxes": b[kept], "scores": sc[kept], "labels": labels[kept]})
    return results


@MODEL_BUILDERS.register("detection")
def create_detector(
    arch: Any,
    num_classes: int = 1,
    init_channels: int = 16,
    layers: int = 3,
    neck_channels: int = 32,
    head_convs: int = 2,
    in_chans: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    drop_path_prob: float = 0.0,
    **_: Any,
) -> Detector:
    """The searched detector of a ``detection`` genotype (its JSON or the object)."""
    from tasks.detection.space import DetectionGenotype
    from zoo.space.network import CellNetwork

    g = DetectionGenotype.from_json(arch) if isinstance(arch, dict) else arch
    backbone = CellNetwork(
        g.backbone,
        num_classes=0,
        init_channels=init_channels,
        layers=layers,
        in_chans=in_chans,
        stem="imagenet",
        drop_path_prob=drop_path_prob,
    )
    return assemble(backbone, g.neck, num_classes, neck_channels, head_convs, mean, std)


def assemble(
    backbone: nn.Module,
    neck: NeckGenotype | nn.Module,
    num_classes: int,
    neck_channels: int,
    head_convs: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> Detector:
    """Backbone (timm-style ``feature_info``) + neck genotype or module + FCOS head."""
    info = backbone.feature_info
    if isinstance(neck, NeckGenotype):
        n_in = min(neck.num_levels, len(info))
        chans = [int(i["num_chs"]) for i in info][-n_in:]
        reductions = [int(i["reduction"]) for i in info][-n_in:]
        if reductions[0] != 2**neck.min_level:
            raise ValueError(
                f"backbone's finest used level has stride {reductions[0]}; the neck's P{neck.min_level} needs stride {2**neck.min_level}"
            )
        neck = Neck(neck, chans, neck_channels)
        strides = [2**lv for lv in range(neck.genotype.min_level, neck.genotype.max_level + 1)]
    else:
        n_in = len(info)
        strides = list(getattr(neck, "strides"))
    return Detector(backbone, neck, num_classes, strides, head_convs, mean, std, backbone_levels=n_in)


class _TimmFeatures(nn.Module):
    """timm ``features_only`` model with the ``forward_features``/``feature_info`` API of the cell networks."""

    def __init__(self, name: str, in_chans: int, out_indices: Sequence[int], **kwargs: Any) -> None:
        super().__init__()
        import timm

        self.body = timm.create_model(
            name, pretrained=False, features_only=True, out_indices=tuple(out_indices), in_chans=in_chans, **kwargs
        )
        self.feature_info = [
            {"num_chs": c, "reduction": r} for c, r in zip(self.body.feature_info.channels(), self.body.feature_info.reduction())
        ]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


class _TorchvisionFPN(nn.Module):
    """torchvision's ``FeaturePyramidNetwork`` (Lin et al., CVPR 2017) on a list of levels."""

    def __init__(self, in_channels: Sequence[int], C: int, strides: Sequence[int]) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        extra = len(strides) > len(in_channels)
        self.fpn = FeaturePyramidNetwork(list(in_channels), C, extra_blocks=LastLevelMaxPool() if extra else None)
        self.out_channels = C
        self.strides = list(strides)[: len(in_channels) + (1 if extra else 0)]

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())


def create_baseline(
    num_classes: int = 1,
    neck_channels: int = 32,
    head_convs: int = 2,
    in_chans: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    backbone: str = "resnet18",
    backbone_args: dict[str, Any] | None = None,
    **_: Any,
) -> Detector:
    """The hand-designed reference: timm ``backbone`` C3-C5 (random init; ``backbone_args`` go to ``timm.create_model``,
    e.g. a ResNet's ``channels``) + torchvision FPN P3-P5 + the FCOS head."""
    body = _TimmFeatures(backbone, in_chans, (2, 3, 4), **(backbone_args or {}))
    strides = [int(i["reduction"]) for i in body.feature_info]
    fpn = _TorchvisionFPN([int(i["num_chs"]) for i in body.feature_info], neck_channels, strides)
    return assemble(body, fpn, num_classes, neck_channels, head_convs, mean, std)
