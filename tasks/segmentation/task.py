"""Semantic segmentation: Auto-DeepLab's searched cell and network-level path; mIoU.

The searched network is :class:`tasks.segmentation.model.SegmentationNet` (stem, one cell per
path layer, ASPP, DeepLabv3+ decoder); one-shot strategies train
:class:`tasks.segmentation.supernet.PathSuperNet`, which relaxes cell and path together.
Every run also trains a baseline, segmentation-models-pytorch's ``Unet`` with a random-init
encoder (``task.baseline.encoder``, default ``resnet18``), on the same data and epochs, so
``metrics.json`` shows what the search bought at what size; predictions on the test images
are drawn to PNG in the run directory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tasks.segmentation.data import SegImage, SegmentationData, load
from tasks.segmentation.metrics import confusion, draw, scores
from zoo.config_values import NON_NEGATIVE_INT, OPEN_FRACTION, POSITIVE, POSITIVE_INT, ConfigError, Flag, Number, Text
from zoo.device import loader_options
from zoo.estimate.problem import OneShotProblem
from zoo.fit import fit_adamw_warmup, model_device
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, Task


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) float in [0, 1] -> (C, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)


class TileDataset(Dataset):
    """Tiles as (image, mask) tensors; with ``augment``, random flips and (square tiles) quarter turns."""

    def __init__(self, items: Sequence[SegImage], augment: bool, seed: int = 0) -> None:
        self.items = list(items)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x, y = to_tensor(it.image), torch.from_numpy(np.ascontiguousarray(it.mask, dtype=np.int64))
        if self.augment:
            if self.rng.random() < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            if self.rng.random() < 0.5:
                x, y = x.flip(-2), y.flip(-2)
            if x.shape[-1] == x.shape[-2]:
                k = int(self.rng.integers(4))
                x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        return x.contiguous(), y.contiguous()


def _smp_encoder_exists(smp: Any, name: str) -> bool:
    """smp's own encoders, or ``tu-<name>`` for any timm model (smp's "timm universal" encoders)."""
    if name.startswith("tu-"):
        import timm

        return timm.is_model(name[3:])
    return name in smp.encoders.get_encoder_names()


def channel_stats(items: Sequence[SegImage], chans: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over all pixels of ``items`` (float64 sums, two passes:
    the mean first, then squared deviations from it, which stays exact where one pass would cancel)."""
    n = sum(t.image.shape[0] * t.image.shape[1] for t in items)
    mean = sum(t.image.reshape(-1, chans).sum(0, dtype=np.float64) for t in items) / n
    var = sum(((t.image.reshape(-1, chans) - mean) ** 2).sum(0, dtype=np.float64) for t in items) / n
    return [float(m) for m in mean], [max(float(s), 1e-3) for s in np.sqrt(var)]


class PadTo(nn.Module):
    """Runs ``model`` on the input reflect-padded to a multiple of ``multiple`` and crops its output back
    (smp's encoders need sides divisible by 32; tiles and test images need not be)."""

    def __init__(self, model: nn.Module, multiple: int = 32) -> None:
        super().__init__()
        self.model = model
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        ph, pw = (-H) % self.multiple, (-W) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < H and pw < W else "replicate")
        return self.model(x)[..., :H, :W]


@torch.no_grad()
def predict(model: nn.Module, image: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Class indices (H, W) for one whole image (reflect-padded to a multiple of ``multiple`` for the models' strides, cropped
    back), computed where the model is."""
    was = model.training
    model.eval()
    logits = PadTo(model, multiple)(to_tensor(image)[None].to(model_device(model)))
    model.train(was)
    return logits.argmax(1)[0].cpu().numpy()


@TASKS.register("segmentation")
class Segmentation(Task):
    name = "segmentation"
    metric = "mIoU"
    supernet_kinds = ("darts", "pc_darts")
    spaces = ("segmentation",)
    trainer_specs = {**COMMON_TRAINER_SPECS, "num_workers": NON_NEGATIVE_INT}  # num_workers: DataLoader processes
    config_specs = {
        **{
            f"{part}.{key}": POSITIVE_INT
            for part in ("model", "estimate_model", "supernet")
            for key in ("init_channels", "aspp_channels", "decoder_channels")
        },
        "model.drop_path_prob": Number(integer=False, low=0.0, high=1.0, high_open=True),
        "aspp_rates": Number(integer=True, low=1, items=True),
        "baseline.enabled": Flag(),
        "baseline.encoder": Text(),
        "draw_images": NON_NEGATIVE_INT,
    }
    _tiles = {"tile_size": Number(integer=True, low=16)}
    _folder = {
        "root": Text(null=True),
        "ignore_index": Number(integer=True, low=0, high=255),
        "split_seed": Number(integer=True),
        "scale": POSITIVE,
        **_tiles,
    }
    data_specs = {
        "nuclei": {
            "root": Text(null=True),
            "tile_stride": Number(integer=True, low=1),
            "test_columns": Number(integer=True, low=16),
            **_tiles,
        },
        "masks": {**_folder, "test_fraction": OPEN_FRACTION},
        "voc_seg": {**_folder, "train_split": Text(), "test_split": Text()},
    }

    def setup(self) -> None:
        data: SegmentationData = load(self.data_cfg)
        for split in ("train", "search_train", "search_valid", "test"):
            if not getattr(data, split):
                raise DataError(f"data={self.data_cfg.name}: no {split.replace('_', ' ')} images or tiles")
        if bool(self.cfg.baseline.enabled):
            import segmentation_models_pytorch as smp

            encoder = str(self.cfg.baseline.encoder)
            if not _smp_encoder_exists(smp, encoder):
                raise ConfigError(
                    f"task.baseline.encoder={encoder!r} is not an encoder of segmentation-models-pytorch; allowed: e.g. resnet18, resnet34, "
                    "mobilenet_v2, efficientnet-b0 (smp.encoders.get_encoder_names() lists them), or tu-<timm model>"
                )
        self.data = data
        self.classes = list(data.classes)
        self.ignore_index = int(data.ignore_index)
        self.mean, self.std = channel_stats(data.train, data.in_chans)
        self.splits: dict[str, list[SegImage]] = {
            "search_train": data.search_train,
            "search_valid": data.search_valid,
            "train": data.train,
            "test": data.test,
        }
        self.predictions: dict[str, list[np.ndarray]] = {}

    def describe_data(self) -> dict[str, Any]:
        d = self.data
        fg = [float(np.mean((t.mask != 0) & (t.mask != d.ignore_index))) for t in d.train]
        return {
            **d.source,
            "classes": self.classes,
            "in_chans": d.in_chans,
            "ignore_index": d.ignore_index,
            "n_train_tiles": len(d.train),
            "tile_size": list(d.train[0].mask.shape),
            "n_search_train_tiles": len(d.search_train),
            "n_search_valid_tiles": len(d.search_valid),
            "test_images": [t.name for t in d.test],
            "test_sizes": [list(t.mask.shape) for t in d.test],
            "train_foreground_fraction": round(float(np.mean(fg)), 4),
        }

    def loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            TileDataset(self.splits[split], augment=shuffle, seed=self.seed),
            batch_size=batch_size or int(self.trainer_cfg.batch_size),
            shuffle=shuffle,
            generator=g,
            **loader_options(self.device, int(self.trainer_cfg.get("num_workers", 0))),
        )

    # ---- models
    def _head_args(self, m: Any) -> dict[str, Any]:
        return {
            "num_classes": len(self.classes),
            "in_chans": int(self.data.in_chans),
            "aspp_channels": int(m.aspp_channels),
            "aspp_rates": [int(r) for r in self.cfg.aspp_rates],
            "decoder_channels": int(m.decoder_channels),
            "mean": self.mean,
            "std": self.std,
        }

    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        m = self.cfg.model if final else self.cfg.estimate_model
        out = {"arch": genotype.to_json(), "init_channels": int(m.init_channels), **self._head_args(m)}
        if final:
            out["drop_path_prob"] = float(self.cfg.model.get("drop_path_prob", 0.0))
        return out

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(**self.model_config(genotype, final))

    def _loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, ignore_index=self.ignore_index)

    @torch.no_grad()
    def _score_tiles(self, model: nn.Module, loader: Any) -> dict[str, Any]:
        was = model.training
        model.eval()
        K = len(self.classes)
        conf = np.zeros((K, K), dtype=np.int64)
        device = model_device(model)
        for x, y in loader:
            pred = model(x.to(device)).argmax(1)
            conf += confusion(pred.cpu().numpy(), y.numpy(), K, self.ignore_index)
        model.train(was)
        return scores(conf, self.classes)

    def make_supernet(self, kind: str = "darts", **kwargs: Any) -> nn.Module:
        """A segmentation supernet of ``kind`` (darts, pc_darts) with ``task.supernet``'s size."""
        from tasks.segmentation.supernet import PathSuperNet

        s = self.cfg.supernet
        torch.manual_seed(self.seed)
        return PathSuperNet(self.space, init_channels=int(s.init_channels), kind=kind, **self._head_args(s), **kwargs)  # type: ignore[arg-type]

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
            "valid_mIoU": m["mIoU"],
            "valid_pixel_accuracy": m["pixel_accuracy"],
            "train_loss": loss,
            "params": sum(p.numel() for p in model.parameters()),
        }

    def test(self, model: nn.Module, key: str) -> dict[str, Any]:
        """mIoU, per-class IoU and pixel accuracy over the whole test images; predictions kept for :meth:`write_outputs`."""
        K = len(self.classes)
        conf = np.zeros((K, K), dtype=np.int64)
        preds = []
        keep = int(self.cfg.get("draw_images", 4))
        for k, item in enumerate(self.splits["test"]):
            pred = predict(model, item.image)
            conf += confusion(pred, item.mask, K, self.ignore_index)
            if k < keep:
                preds.append(pred.astype(np.uint8 if K <= 256 else np.int32))
        self.predictions[key] = preds
        return scores(conf, self.classes)

    def _fit_and_test(self, model: nn.Module, key: str, checkpoints: Any = None) -> dict[str, Any]:
        t0 = time.time()
        ckpt = checkpoints.for_model(key) if checkpoints is not None else None
        loss = self.fit(model, "train", int(self.trainer_cfg.epochs), f"retrain {key}", checkpoint=ckpt)
        seconds = time.time() - t0
        m = self.test(model, key)
        return {**m, "train_loss": loss, "train_seconds": round(seconds, 1), "params": sum(p.numel() for p in model.parameters())}

    def create_baseline(self) -> nn.Module:
        """smp ``Unet`` with a random-init ``task.baseline.encoder``, normalisation in front (it takes [0, 1] images too),
        inputs padded to a multiple of 32 (as smp's encoders need) and outputs cropped back."""
        import segmentation_models_pytorch as smp

        from zoo.models import Normalize

        torch.manual_seed(self.seed)
        unet = smp.Unet(
            encoder_name=str(self.cfg.baseline.encoder),
            encoder_weights=None,
            in_channels=int(self.data.in_chans),
            classes=len(self.classes),
        )
        return PadTo(nn.Sequential(Normalize(self.mean, self.std), unet))

    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        model = self.build_model(genotype, final=True)
        searched = self._fit_and_test(model, "searched", checkpoints)
        out: dict[str, Any] = {
            "test_mIoU": searched["mIoU"],
            "test_pixel_accuracy": searched["pixel_accuracy"],
            "test_per_class_IoU": searched["per_class_IoU"],
            "score": searched[self.metric],
            "params": searched["params"],
            "train_seconds": searched["train_seconds"],
        }
        if bool(self.cfg.baseline.enabled):
            b = self._fit_and_test(self.create_baseline(), "baseline", checkpoints)
            out.update(
                {
                    "test_mIoU_baseline": b["mIoU"],
                    "test_pixel_accuracy_baseline": b["pixel_accuracy"],
                    "params_baseline": b["params"],
                    "baseline": {"model": f"segmentation-models-pytorch Unet, encoder {self.cfg.baseline.encoder} (random init)", **b},
                }
            )
        return model, out

    def write_outputs(self, run_dir: str | Path) -> list[str]:
        """Draws each model's predictions on (up to ``task.draw_images``) test images; returns the file names."""
        names = []
        n = int(self.cfg.get("draw_images", 4))
        for key, preds in self.predictions.items():
            for item, pred in list(zip(self.splits["test"], preds))[:n]:
                name = f"predictions_{key}_{item.name}.png"
                draw(item, pred, self.classes, Path(run_dir) / name, f"{key} model on {item.name}")
                names.append(name)
        return names
