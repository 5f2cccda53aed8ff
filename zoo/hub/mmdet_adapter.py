"""Hand a searched detection backbone and neck to MMDetection (mmdet 3.x ``MODELS`` registry).

``register_mmdet()`` registers two modules, so an mmdet config (RetinaNet, FCOS, ...) can name them::

    model = dict(
        type="FCOS",
        backbone=dict(type="ZooCellBackbone", genotype="path/to/genotype.json", init_channels=16, layers=3),
        neck=dict(type="ZooNasFpnNeck", genotype="path/to/genotype.json", in_channels=[64, 128, 256], out_channels=256),
        ...)

``genotype`` is a ``detection`` genotype (a run's ``genotype.json``, its dict, or for the
backbone also a published cell name such as ``darts_v2``). The backbone returns the
stride-8/16/32 feature maps; :func:`backbone_channels` tells the neck's ``in_channels``.
Without mmdet, :func:`register_mmdet` raises one line saying what to install
(``scripts/install_mmdet.sh``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

INSTALL_HINT = "the MMDetection hand-off needs mmdet 3.3.0 with mmcv 2.1.0 and mmengine: run scripts/install_mmdet.sh"


def _detection_genotype(genotype: Any) -> Any:
    from zoo.space.detection_space import DetectionGenotype

    if isinstance(genotype, DetectionGenotype):
        return genotype
    if isinstance(genotype, (str, Path)) and Path(genotype).suffix == ".json":
        genotype = json.loads(Path(genotype).read_text())
    return DetectionGenotype.from_json(genotype)


def _backbone_genotype(genotype: Any) -> Any:
    from zoo.models import resolve_genotype
    from zoo.space.genotype import Genotype

    if isinstance(genotype, (dict, Path)) or (isinstance(genotype, str) and genotype.endswith(".json")):
        g = _detection_genotype(genotype)
        return g.backbone
    g = resolve_genotype(genotype)
    return g.backbone if not isinstance(g, Genotype) else g


class ZooCellBackbone(nn.Module):
    """The searched cell network (``imagenet`` stem) returning its stride 8, 16 and 32 maps as a tuple."""

    def __init__(self, genotype: Any, init_channels: int = 16, layers: int = 3, in_chans: int = 3, out_indices: Sequence[int] = (0, 1, 2),
                 drop_path_prob: float = 0.0, init_cfg: Any = None) -> None:
        super().__init__()
        from zoo.space.network import CellNetwork

        self.net = CellNetwork(_backbone_genotype(genotype), num_classes=0, init_channels=init_channels, layers=layers,
                               in_chans=in_chans, stem="imagenet", drop_path_prob=drop_path_prob)
        self.out_indices = tuple(out_indices)

    def init_weights(self) -> None:  # mmdet calls it; the module initialises itself
        pass

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.net.forward_features(x)
        return tuple(feats[i] for i in self.out_indices)


class ZooNasFpnNeck(nn.Module):
    """The searched NAS-FPN neck: a tuple of backbone maps -> a tuple of P3.. maps of ``out_channels``."""

    def __init__(self, genotype: Any, in_channels: Sequence[int], out_channels: int = 256, init_cfg: Any = None) -> None:
        super().__init__()
        from zoo.space.fpn import Neck

        self.neck = Neck(_detection_genotype(genotype).neck, list(in_channels), out_channels)

    def init_weights(self) -> None:
        pass

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(self.neck(list(feats)))


def backbone_channels(genotype: Any, init_channels: int = 16, layers: int = 3) -> list[int]:
    """The ``in_channels`` a neck needs after :class:`ZooCellBackbone` with these arguments."""
    from zoo.space.network import CellNetwork

    net = CellNetwork(_backbone_genotype(genotype), num_classes=0, init_channels=init_channels, layers=layers, stem="imagenet")
    return [int(i["num_chs"]) for i in net.feature_info]


def register_mmdet() -> Any:
    """Registers ``ZooCellBackbone`` and ``ZooNasFpnNeck`` in mmdet's ``MODELS``; returns that registry."""
    try:
        from mmdet.registry import MODELS
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    MODELS.register_module(name="ZooCellBackbone", module=ZooCellBackbone, force=True)
    MODELS.register_module(name="ZooNasFpnNeck", module=ZooNasFpnNeck, force=True)
    return MODELS
