"""Hand a searched detection backbone and neck to MMDetection (mmdet 3.x ``MODELS`` registry).

``register_mmdet()`` registers two modules, so an mmdet config (FCOS, RetinaNet, ...) can name them::

    model = dict(
        type="FCOS",
        backbone=dict(type="ZooCellBackbone", bundle="outputs/detection-darts/<time>"),
        neck=dict(type="ZooNasFpnNeck", bundle="outputs/detection-darts/<time>"),
        bbox_head=dict(type="FCOSHead", in_channels=32, strides=[8, 16, 32], ...),
        ...)

With ``bundle=`` (a ``task=detection`` run directory, bundle archive or zoo name, resolved by
:func:`zoo.hub.api.resolve_bundle`) the modules take the searched
genotype, sizes and trained weights from the bundle (``model.safetensors``, read with
safetensors: nothing is unpickled). Without it they are built from ``genotype=`` (a run's
``genotype.json``, its dict, or for the backbone also a published cell name such as
``darts_v2``) and initialise themselves. :func:`mmdet_model_config` writes the whole model dict
for a bundle (data preprocessor with the bundle's normalisation, backbone, neck and an mmdet
FCOS or RetinaNet head for the three neck levels).

The backbone returns the stride-8/16/32 maps; :func:`backbone_channels` tells the neck's
``in_channels``. Without mmdet, :func:`register_mmdet` raises one line saying what to install
(``scripts/install_mmdet.sh``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.hub.facts import BRIDGES

INSTALL_HINT = "the MMDetection hand-off needs mmdet 3.3.0 with mmcv 2.1.0 and mmengine: run scripts/install_mmdet.sh"


def _detection_genotype(genotype: Any) -> Any:
    from tasks.detection.space import DetectionGenotype

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


def _bundle(bundle: str | Path) -> tuple[Path, dict[str, Any]]:
    """The bundle's directory and its ``model`` arguments; one-line errors for anything else."""
    from zoo.hub.api import resolve_bundle
    from zoo.hub.bundle import read_config

    path, _ = resolve_bundle(bundle, progress=False, label="bundle")  # a directory, an archive (unpacked) or a zoo name (fetched)
    cfg = read_config(path)
    if cfg.get("task") != "detection":
        raise ValueError(f"bundle={str(bundle)!r} is a {cfg.get('task')!r} bundle; the MMDetection modules need a task=detection bundle")
    return path, dict(cfg["model"])


def _load_part(module: nn.Module, directory: Path, prefix: str) -> None:
    """Loads the ``prefix.*`` tensors of the bundle's weights into ``module``, refusing a missing or extra one."""
    from safetensors.torch import load_file

    weights = directory / "model.safetensors"
    state = {k[len(prefix) + 1 :]: v for k, v in load_file(str(weights)).items() if k.startswith(prefix + ".")}
    expected = module.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        name = f"lacks tensor {prefix}.{missing[0]!r}" if missing else f"has unexpected tensor {prefix}.{extra[0]!r}"
        raise ValueError(f"{weights} {name} for the MMDetection {prefix}")
    module.load_state_dict(state, strict=True)


class ZooCellBackbone(nn.Module):
    """The searched cell network (``imagenet`` stem) returning its stride 8, 16 and 32 maps as a tuple."""

    def __init__(
        self,
        genotype: Any = None,
        init_channels: int | None = None,
        layers: int | None = None,
        in_chans: int = 3,
        out_indices: Sequence[int] = (0, 1, 2),
        drop_path_prob: float = 0.0,
        bundle: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        from zoo.space.network import CellNetwork

        args: dict[str, Any] = {}
        if bundle is not None:
            directory, args = _bundle(bundle)
        if genotype is None and "arch" not in args:
            raise ValueError("ZooCellBackbone needs genotype= (a genotype.json, its dict or a cell name) or bundle= (a task=detection run)")
        g = _backbone_genotype(genotype if genotype is not None else args["arch"])
        self.net = CellNetwork(
            g,
            num_classes=0,
            init_channels=int(init_channels or args.get("init_channels", 16)),
            layers=int(layers or args.get("layers", 3)),
            in_chans=in_chans,
            stem="imagenet",
            drop_path_prob=drop_path_prob,
        )
        self.out_indices = tuple(out_indices)
        if bundle is not None:
            _load_part(self.net, directory, "backbone")

    def init_weights(self) -> None:  # mmdet calls it; the module initialises (or loads) itself
        pass

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.net.forward_features(x)
        return tuple(feats[i] for i in self.out_indices)


class ZooNasFpnNeck(nn.Module):
    """The searched NAS-FPN neck: a tuple of backbone maps -> a tuple of P3.. maps of ``out_channels``."""

    def __init__(
        self,
        genotype: Any = None,
        in_channels: Sequence[int] | None = None,
        out_channels: int | None = None,
        bundle: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        from tasks.detection.model import Neck

        args: dict[str, Any] = {}
        if bundle is not None:
            directory, args = _bundle(bundle)
            in_channels = in_channels or backbone_channels(args["arch"], int(args.get("init_channels", 16)), int(args.get("layers", 3)))
        if genotype is None and "arch" not in args:
            raise ValueError("ZooNasFpnNeck needs genotype= (a detection genotype.json or its dict) or bundle= (a task=detection run)")
        if in_channels is None:
            raise ValueError(
                "ZooNasFpnNeck needs in_channels= (see tasks.detection.integrations.mmdet.backbone_channels) unless bundle= is given"
            )
        self.neck = Neck(
            _detection_genotype(genotype if genotype is not None else args["arch"]).neck,
            list(in_channels),
            int(out_channels or args.get("neck_channels", 256)),
        )
        if bundle is not None:
            _load_part(self.neck, directory, "neck")

    def init_weights(self) -> None:
        pass

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(self.neck(list(feats)))


def backbone_channels(genotype: Any, init_channels: int = 16, layers: int = 3) -> list[int]:
    """The ``in_channels`` a neck needs after :class:`ZooCellBackbone` with these arguments."""
    from zoo.space.network import CellNetwork

    net = CellNetwork(_backbone_genotype(genotype), num_classes=0, init_channels=init_channels, layers=layers, stem="imagenet")
    return [int(i["num_chs"]) for i in net.feature_info]


HEADS = ("fcos", "retinanet")


def mmdet_model_config(bundle: str | Path, num_classes: int | None = None, head: str = "fcos") -> dict[str, Any]:
    """An mmdet model dict that trains the bundle's searched backbone and neck (with its weights) under
    an mmdet ``head`` (``fcos`` or ``retinanet``) for ``num_classes`` (default: the bundle's).

    A plain dict, to paste as ``model = ...`` into an mmdet config file; to build it directly, wrap it
    as mmdet's config loader does: ``MODELS.build(mmengine.config.ConfigDict(cfg))``.
    The data preprocessor applies the bundle's normalisation (mean/std of [0, 1] images, as the
    zoo trains) in mmdet's 0-255 pixel units and turns mmdet's BGR images to RGB.
    """
    if head not in HEADS:
        raise ValueError(f"head={head!r} is invalid; allowed: {', '.join(HEADS)}")
    directory, args = _bundle(bundle)
    from tasks.detection.space import DetectionGenotype

    neck = DetectionGenotype.from_json(args["arch"]).neck
    strides = [2**lv for lv in range(neck.min_level, neck.max_level + 1)]
    C = int(args.get("neck_channels", 32))
    K = int(num_classes if num_classes is not None else args.get("num_classes", 1))
    mean = [255.0 * float(v) for v in (args.get("mean") or [0.0, 0.0, 0.0])]
    std = [255.0 * float(v) for v in (args.get("std") or [1.0, 1.0, 1.0])]
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if C % g == 0)
    cfg: dict[str, Any] = {
        "data_preprocessor": {
            "type": "DetDataPreprocessor",
            "mean": mean,
            "std": std,
            "bgr_to_rgb": True,
            "pad_size_divisor": max(strides),
        },
        "backbone": {"type": "ZooCellBackbone", "bundle": str(directory)},
        "neck": {"type": "ZooNasFpnNeck", "bundle": str(directory)},
    }
    stacked = int(args.get("head_convs", 2))
    if head == "fcos":
        # mmdet's FCOS convention: level of stride s regresses boxes whose largest side distance is in (4s, 8s]
        ranges = [(-1, 8 * strides[0])] + [(4 * s, 8 * s) for s in strides[1:-1]] + [(4 * strides[-1], 100000000)]
        cfg.update(
            type="FCOS",
            bbox_head={
                "type": "FCOSHead",
                "num_classes": K,
                "in_channels": C,
                "feat_channels": C,
                "stacked_convs": stacked,
                "strides": strides,
                "regress_ranges": ranges,
                "norm_cfg": {"type": "GN", "num_groups": groups, "requires_grad": True},
                "center_sampling": True,
                "center_sample_radius": 1.5,
                "norm_on_bbox": True,
                "centerness_on_reg": True,
                "loss_cls": {"type": "FocalLoss", "use_sigmoid": True, "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
                "loss_bbox": {"type": "GIoULoss", "loss_weight": 1.0},
                "loss_centerness": {"type": "CrossEntropyLoss", "use_sigmoid": True, "loss_weight": 1.0},
            },
            test_cfg={
                "nms_pre": 1000,
                "min_bbox_size": 0,
                "score_thr": 0.05,
                "nms": {"type": "nms", "iou_threshold": 0.6},
                "max_per_img": 100,
            },
        )
    else:
        cfg.update(
            type="RetinaNet",
            bbox_head={
                "type": "RetinaHead",
                "num_classes": K,
                "in_channels": C,
                "feat_channels": C,
                "stacked_convs": stacked,
                "anchor_generator": {
                    "type": "AnchorGenerator",
                    "octave_base_scale": 4,
                    "scales_per_octave": 3,
                    "ratios": [0.5, 1.0, 2.0],
                    "strides": strides,
                },
                "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [1.0] * 4},
                "loss_cls": {"type": "FocalLoss", "use_sigmoid": True, "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
                "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0},
            },
            train_cfg={
                "assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.4, "min_pos_iou": 0, "ignore_iof_thr": -1},
                "sampler": {"type": "PseudoSampler"},
                "allowed_border": -1,
                "pos_weight": -1,
                "debug": False,
            },
            test_cfg={
                "nms_pre": 1000,
                "min_bbox_size": 0,
                "score_thr": 0.05,
                "nms": {"type": "nms", "iou_threshold": 0.5},
                "max_per_img": 100,
            },
        )
    return cfg


@BRIDGES.register("mmdet")
def register_mmdet() -> Any:
    """Registers ``ZooCellBackbone`` and ``ZooNasFpnNeck`` in mmdet's ``MODELS`` (and mmdet's own
    modules, so configs can name FCOS, RetinaNet, ...); returns that registry."""
    try:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    register_all_modules(init_default_scope=True)
    MODELS.register_module(name="ZooCellBackbone", module=ZooCellBackbone, force=True)
    MODELS.register_module(name="ZooNasFpnNeck", module=ZooNasFpnNeck, force=True)
    return MODELS
