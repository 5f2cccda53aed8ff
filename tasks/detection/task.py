"""Object detection: searched cell backbone -> searched NAS-FPN neck -> FCOS head; COCO mAP.

Which parts are searched is ``search.target`` (``backbone``, ``neck`` or ``both``), carried by
the ``detection`` space. Every run also trains a baseline with the same data and epochs: a timm
ResNet-18 (random init) whose widths are scaled to the searched model's parameter count (or to
``task.baseline.params``; :func:`zoo.sizing.fit_params`) + torchvision's FPN + the same head, or with
``task.baseline.backbone`` that named timm backbone at its own size; so ``metrics.json`` shows whether
the search beat the hand-made detector of the same size. Predictions on the test images are drawn to
PNG in the run directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tasks.detection.data import Annotated, DetectionData, TileDataset, collate, load
from tasks.detection.metrics import coco_map, draw, fcos_loss, predict
from tasks.detection.model import create_baseline as resnet_fpn_fcos
from tasks.detection.model import decode
from zoo.config_values import (
    NON_NEGATIVE_INT,
    OPEN_FRACTION,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Count,
    Flag,
    Number,
    Text,
)
from zoo.device import model_device
from zoo.scenes import SCENE_SPECS
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, SupervisedTask

_TILE_SPECS = {"scale": POSITIVE, "tile_size": Number(integer=True, low=32), "max_train_tiles": Number(integer=True, low=1, null=True)}
_SPLIT_SPECS = {"test_fraction": OPEN_FRACTION, "split_seed": Number(integer=True)}


@TASKS.register("detection")
class Detection(SupervisedTask):
    name = "detection"
    metric = "mAP50"
    width_keys = {"init_channels": 2, "neck_channels": 8}  # backbone cells (its stem halves them), the neck and head (GroupNorm of 8)
    supernet_kinds = ("darts", "pc_darts")
    spaces = ("detection",)  # backbone + neck; search.target picks what is searched
    # num_workers: DataLoader processes; search_items: the most items of each search split a search trains on (SupervisedTask.search_loader)
    trainer_specs = {
        **COMMON_TRAINER_SPECS,
        "num_workers": NON_NEGATIVE_INT,
        "search_items": Number(integer=True, low=1, null=True),
    }
    config_specs = {
        **{
            f"{part}.{key}": POSITIVE_INT
            for part in ("model", "estimate_model", "supernet")
            for key in ("init_channels", "layers", "neck_channels")
        },
        **{f"{part}.head_convs": NON_NEGATIVE_INT for part in ("model", "estimate_model", "supernet")},
        "supernet.multiplier": POSITIVE_INT,
        "center_radius": POSITIVE,
        "max_detections": POSITIVE_INT,
        "draw_score": PROBABILITY,
        "draw_images": NON_NEGATIVE_INT,
        "baseline.enabled": Flag(),
        "baseline.backbone": Text(null=True),
        "baseline.params": Count(null=True),
        "baseline.tolerance": Number(integer=False, low=0.0, high=1.0, low_open=True),
    }
    data_specs = {
        "scenes": SCENE_SPECS,
        "trees": {"root": Text(null=True), "test_image": Text(null=True), **_TILE_SPECS},
        "coco": {"root": Text(null=True), "annotations": Text(), "images": Text(), **_SPLIT_SPECS, **_TILE_SPECS},
        "voc": {"root": Text(null=True), "classes": Text(null=True, items=True), **_SPLIT_SPECS, **_TILE_SPECS},
    }
    estimate_metrics = {"reward": "mAP50", "valid_mAP": "mAP", "valid_mAP50": "mAP50", "train_loss": "train_loss", "params": "params"}
    retrain_metrics = {"test_mAP": "mAP", "test_mAP50": "mAP50", "score": "mAP50", "params": "params", "train_seconds": "train_seconds"}
    baseline_metrics = {"test_mAP_baseline": "mAP", "test_mAP50_baseline": "mAP50", "params_baseline": "params"}

    @classmethod
    def check_config(cls, cfg: Any, data_cfg: Any) -> None:
        from zoo.sizing import check_timm_model

        super().check_config(cfg, data_cfg)
        check_timm_model("task.baseline.backbone", cfg.get("baseline", {}).get("backbone") if cfg is not None else None)

    def setup(self) -> None:
        data: DetectionData = load(self.data_cfg)
        if not data.train:
            raise DataError(f"data={self.data_cfg.name}: no training crops")
        self.data = data
        self.classes = data.classes
        pixels = np.concatenate([t.image.reshape(-1, 3) for t in data.train]).astype(np.float32) / 255.0
        self.mean = pixels.mean(0).tolist()
        self.std = [max(float(s), 1e-3) for s in pixels.std(0)]
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(data.train))
        half = len(order) // 2
        self.splits: dict[str, list[Annotated]] = {
            "search_train": [data.train[i] for i in sorted(order[half:])],
            "search_valid": [data.train[i] for i in sorted(order[:half])],
            "train": data.train,
            "test": data.test,
        }
        self.predictions: dict[str, list[dict[str, np.ndarray]]] = {}

    def describe_data(self) -> dict[str, Any]:
        return {
            **self.data.source,
            "classes": self.classes,
            "in_chans": 3,
            "n_train_tiles": len(self.splits["train"]),
            "n_train_boxes": int(sum(len(t.boxes) for t in self.splits["train"])),
            "test_images": [t.name for t in self.splits["test"]],
            "n_test_boxes": int(sum(len(t.boxes) for t in self.splits["test"])),
        }

    def loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        return self.data_loader(TileDataset(self.splits[split], augment=shuffle, seed=self.seed), shuffle, batch_size, collate_fn=collate)

    # ---- models
    def _head_args(self, m: Any) -> dict[str, Any]:
        return {
            "num_classes": len(self.classes),
            "neck_channels": int(m.neck_channels),
            "head_convs": int(m.head_convs),
            "in_chans": 3,
            "mean": self.mean,
            "std": self.std,
        }

    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        m = self.size_config(final)
        return {"arch": genotype.to_json(), "init_channels": int(m.init_channels), "layers": int(m.layers), **self._head_args(m)}

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(**self.model_config(genotype, final))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, boxes, labels = batch
        out = model(x)
        # FCOS targets and box losses in float32 also when the forward ran under bf16 autocast (trainer.amp)
        out = dataclasses.replace(out, **{f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)})
        return fcos_loss(out, boxes, labels, float(self.cfg.get("center_radius", 1.5)))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """COCO ``mAP`` and ``mAP50`` on ``split``'s tiles."""
        was = model.training
        model.eval()
        items, preds = [], []
        device = model_device(model)
        for x, boxes, labels in self.loader(split, False):
            for i, p in enumerate(decode(model(x.to(device)), x.shape[-2:], max_det=int(self.cfg.max_detections))):
                keep = labels[i] >= 0
                items.append(
                    Annotated("", np.zeros((x.shape[-2], x.shape[-1], 3), np.uint8), boxes[i][keep].numpy(), labels[i][keep].numpy())
                )
                preds.append({k: v.cpu().numpy() for k, v in p.items()})
        model.train(was)
        return coco_map(items, preds, self.classes, int(self.cfg.max_detections))

    def make_supernet(self, kind: str = "darts", **kwargs: Any) -> nn.Module:
        """A detection supernet of ``kind`` (darts, pc_darts) with ``task.supernet``'s size."""
        from tasks.detection.supernet import DetectionSuperNet

        s = self.cfg.supernet
        torch.manual_seed(self.seed)
        return DetectionSuperNet(
            self.space,
            len(self.classes),
            int(s.init_channels),
            int(s.layers),
            int(s.neck_channels),
            int(s.head_convs),
            self.mean,
            self.std,
            multiplier=int(s.get("multiplier", 4)),
            kind=kind,
            **kwargs,
        )

    def example_input(self) -> torch.Tensor:
        """One validation tile: the size every candidate is trained and scored on."""
        return TileDataset(self.splits["search_valid"], augment=False)[0][0][None]

    def test(self, model: nn.Module, key: str) -> dict[str, float]:
        """COCO ``mAP`` and ``mAP50`` on the whole test images; the predictions are kept for
        :meth:`write_outputs` under ``key``."""
        test = self.splits["test"]
        preds = predict(model, test, max_det=int(self.cfg.max_detections))
        self.predictions[key] = preds
        return coco_map(test, preds, self.classes, int(self.cfg.max_detections))

    def create_baseline(self, searched_params: int) -> tuple[nn.Module, dict[str, Any]]:
        """torchvision's FPN + the searched model's FCOS head on a random-init timm backbone: ``task.baseline.backbone``
        when named, else the ResNet-18 family member (stem 8w, stages 8w-64w channels) closest to ``task.baseline.params``
        parameters, by default the searched model's ``searched_params``."""
        from zoo.sizing import fit_params, resnet_widths, target_params

        named = self.cfg.baseline.get("backbone")
        head = self._head_args(self.size_config(final=True))
        if named is not None:
            torch.manual_seed(self.seed)
            base = resnet_fpn_fcos(backbone=str(named), **head)
            return base, {"model": f"timm {named} (random init) + torchvision FeaturePyramidNetwork + FCOS head"}

        def member(w: float) -> nn.Module:
            torch.manual_seed(self.seed)
            return resnet_fpn_fcos(backbone="resnet18", backbone_args=resnet_widths(w), **head)

        sized = fit_params(member, target_params(self.cfg.baseline, searched_params), 0.125, 8.0)
        return sized.model, {
            "model": (
                f"timm ResNet-18 (random init), stage widths {list(resnet_widths(sized.width)['channels'])}, + torchvision "
                f"FeaturePyramidNetwork ({head['neck_channels']} channels) + FCOS head"
            ),
            **sized.report(float(self.cfg.baseline.get("tolerance", 0.1))),
        }

    def write_outputs(self, run_dir: str | Path) -> list[str]:
        """Draws each model's predictions on (up to ``task.draw_images``) test images; returns the file names."""
        names = []
        n = int(self.cfg.get("draw_images", 4))
        for key, preds in self.predictions.items():
            for item, p in list(zip(self.splits["test"], preds))[:n]:
                name = f"predictions_{key}_{item.name}.png"
                draw(item, p, self.classes, Path(run_dir) / name, f"{key} model on {item.name}", float(self.cfg.draw_score))
                names.append(name)
        return names
