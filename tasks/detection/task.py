"""Object detection: searched cell backbone -> searched NAS-FPN neck -> FCOS head; COCO mAP.

Which parts are searched is ``search.target`` (``backbone``, ``neck`` or ``both``), carried by
the ``detection`` space. Every run also trains a fixed baseline (timm ``resnet18`` +
torchvision FPN + the same head) with the same data and epochs, so ``metrics.json`` shows
what the search bought; predictions on the test images are drawn to PNG in the run directory.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tasks.detection.data import Annotated, DetectionData, load
from tasks.detection.evaluate import coco_map, draw, predict, to_tensor
from tasks.detection.loss import fcos_loss
from tasks.detection.model import create_baseline, decode
from zoo.config_values import NON_NEGATIVE_INT, OPEN_FRACTION, POSITIVE, POSITIVE_INT, PROBABILITY, Flag, Number, Text
from zoo.device import loader_options
from zoo.estimate.problem import OneShotProblem
from zoo.fit import fit_adamw_warmup, model_device
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, Task


class TileDataset(Dataset):
    """Equal-size crops; random horizontal and vertical flips when ``augment`` (aerial images have no up)."""

    def __init__(self, items: Sequence[Annotated], augment: bool, seed: int = 0) -> None:
        self.items = list(items)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x = to_tensor(it.image)
        boxes = torch.from_numpy(it.boxes.copy())
        H, W = x.shape[-2:]
        if self.augment:
            if self.rng.random() < 0.5:
                x = x.flip(-1)
                boxes = torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1) if len(boxes) else boxes
            if self.rng.random() < 0.5:
                x = x.flip(-2)
                boxes = torch.stack([boxes[:, 0], H - boxes[:, 3], boxes[:, 2], H - boxes[:, 1]], 1) if len(boxes) else boxes
        return x, boxes.reshape(-1, 4), torch.from_numpy(it.labels.copy())


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images stacked; boxes (N, M, 4) and labels (N, M) padded with label -1."""
    M = max(1, max(len(b) for _, b, _ in batch))
    boxes = torch.zeros(len(batch), M, 4)
    labels = torch.full((len(batch), M), -1, dtype=torch.long)
    for i, (_, b, l) in enumerate(batch):
        boxes[i, : len(b)] = b
        labels[i, : len(l)] = l
    return torch.stack([x for x, _, _ in batch]), boxes, labels


_TILE_SPECS = {"scale": POSITIVE, "tile_size": Number(integer=True, low=32), "max_train_tiles": Number(integer=True, low=1, null=True)}
_SPLIT_SPECS = {"test_fraction": OPEN_FRACTION, "split_seed": Number(integer=True)}


@TASKS.register("detection")
class Detection(Task):
    name = "detection"
    metric = "mAP50"
    supernet_kinds = ("darts", "pc_darts")
    spaces = ("detection",)  # backbone + neck; search.target picks what is searched
    trainer_specs = {**COMMON_TRAINER_SPECS, "num_workers": NON_NEGATIVE_INT}  # num_workers: DataLoader processes
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
        "baseline.enabled": Flag(),
        "baseline.backbone": Text(),
    }
    data_specs = {
        "trees": {"root": Text(null=True), "test_image": Text(null=True), **_TILE_SPECS},
        "coco": {"root": Text(null=True), "annotations": Text(), "images": Text(), **_SPLIT_SPECS, **_TILE_SPECS},
        "voc": {"root": Text(null=True), "classes": Text(null=True, items=True), **_SPLIT_SPECS, **_TILE_SPECS},
    }

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
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            TileDataset(self.splits[split], augment=shuffle, seed=self.seed),
            batch_size=batch_size or int(self.trainer_cfg.batch_size),
            shuffle=shuffle,
            generator=g,
            collate_fn=collate,
            **loader_options(self.device, int(self.trainer_cfg.get("num_workers", 0))),
        )

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
        m = self.cfg.model if final else self.cfg.estimate_model
        return {"arch": genotype.to_json(), "init_channels": int(m.init_channels), "layers": int(m.layers), **self._head_args(m)}

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(**self.model_config(genotype, final))

    def _loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, boxes, labels = batch
        out = model(x)
        # FCOS targets and box losses in float32 also when the forward ran under bf16 autocast (trainer.amp)
        out = dataclasses.replace(out, **{f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)})
        return fcos_loss(out, boxes, labels, float(self.cfg.get("center_radius", 1.5)))

    @torch.no_grad()
    def _score_tiles(self, model: nn.Module, loader: Any) -> dict[str, float]:
        was = model.training
        model.eval()
        items, preds = [], []
        device = model_device(model)
        for x, boxes, labels in loader:
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

    def one_shot_problem(self) -> OneShotProblem:
        return OneShotProblem(
            self.make_supernet("darts"),
            self.loader("search_train", True),
            self.loader("search_valid", True),
            self._loss,
            lambda model, loader: self._score_tiles(model, self.loader("search_valid", False))[self.metric],
            device=self.device,
            make_supernet=self.make_supernet,
            space=self.space,
            amp=self.amp,
        )

    # ---- estimation, retraining, baseline
    def fit(self, model: nn.Module, split: str, epochs: int, desc: str, checkpoint: Any = None) -> float:
        """The dense-prediction recipe, :func:`zoo.fit.fit_adamw_warmup`, on ``split``'s shuffled tiles."""
        torch.manual_seed(self.seed)
        return fit_adamw_warmup(
            model, self.loader(split, True), epochs, self._loss, self.trainer_cfg, self.device, desc, self.progress, checkpoint
        )

    def example_input(self) -> torch.Tensor:
        """One validation tile: the size every candidate is trained and scored on."""
        return TileDataset(self.splits["search_valid"], augment=False)[0][0][None]

    def estimate(self, genotype: Any) -> dict[str, Any]:
        model = self.build_model(genotype, final=False)
        loss = self.fit(model, "search_train", int(self.trainer_cfg.estimate_epochs), "estimate")
        m = self._score_tiles(model, self.loader("search_valid", False))
        return {
            "reward": m[self.metric],
            "valid_mAP": m["mAP"],
            "valid_mAP50": m["mAP50"],
            "train_loss": loss,
            "params": sum(p.numel() for p in model.parameters()),
        }

    def _fit_and_test(self, model: nn.Module, key: str, checkpoints: Any = None) -> dict[str, Any]:
        t0 = time.time()
        ckpt = checkpoints.for_model(key) if checkpoints is not None else None
        loss = self.fit(model, "train", int(self.trainer_cfg.epochs), f"retrain {key}", checkpoint=ckpt)
        seconds = time.time() - t0
        m = self.test(model, key)
        return {**m, "train_loss": loss, "train_seconds": round(seconds, 1), "params": sum(p.numel() for p in model.parameters())}

    def test(self, model: nn.Module, key: str) -> dict[str, float]:
        """COCO ``mAP`` and ``mAP50`` on the whole test images; the predictions are kept for
        :meth:`write_outputs` under ``key``."""
        test = self.splits["test"]
        preds = predict(model, test, max_det=int(self.cfg.max_detections))
        self.predictions[key] = preds
        return coco_map(test, preds, self.classes, int(self.cfg.max_detections))

    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        model = self.build_model(genotype, final=True)
        searched = self._fit_and_test(model, "searched", checkpoints)
        out: dict[str, Any] = {
            "test_mAP": searched["mAP"],
            "test_mAP50": searched["mAP50"],
            "score": searched[self.metric],
            "params": searched["params"],
            "train_seconds": searched["train_seconds"],
        }
        if bool(self.cfg.baseline.enabled):
            torch.manual_seed(self.seed)
            base = create_baseline(backbone=str(self.cfg.baseline.backbone), **self._head_args(self.cfg.model))
            b = self._fit_and_test(base, "baseline", checkpoints)
            out.update(
                {
                    "test_mAP_baseline": b["mAP"],
                    "test_mAP50_baseline": b["mAP50"],
                    "baseline": {
                        "model": f"timm {self.cfg.baseline.backbone} (random init) + torchvision FeaturePyramidNetwork + FCOS head",
                        **b,
                    },
                }
            )
        return model, out

    def write_outputs(self, run_dir: str | Path) -> list[str]:
        """Draws each model's predictions on the test images; returns the file names."""
        names = []
        for key, preds in self.predictions.items():
            for item, p in zip(self.splits["test"], preds):
                name = f"predictions_{key}_{item.name}.png"
                draw(item, p, self.classes, Path(run_dir) / name, f"{key} model on {item.name}", float(self.cfg.draw_score))
                names.append(name)
        return names
