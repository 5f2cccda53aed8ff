"""Semantic segmentation: Auto-DeepLab's searched cell and network-level path; mIoU.

The searched network is :class:`tasks.segmentation.model.SegmentationNet` (stem, one cell per
path layer, ASPP, DeepLabv3+ decoder); one-shot strategies train
:class:`tasks.segmentation.supernet.PathSuperNet`, which relaxes cell and path together.
Every run also trains a baseline on the same data and epochs: segmentation-models-pytorch's ``Unet``
on a random-init timm ResNet-18 encoder whose widths are scaled to the searched model's parameter count
(or to ``task.baseline.params``; :func:`zoo.sizing.fit_params`), or, with ``task.baseline.encoder``, a
``Unet`` with that named encoder at its own size; so ``metrics.json`` shows whether the search beat the
hand-made model of the same size. Predictions on the test images are drawn to PNG in the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from tasks.segmentation.data import SegImage, SegmentationData, TileDataset, channel_stats, load, to_tensor
from tasks.segmentation.metrics import confusion, draw, scores
from zoo.config_values import NON_NEGATIVE_INT, OPEN_FRACTION, POSITIVE, POSITIVE_INT, ConfigError, Count, Flag, Number, Text
from zoo.device import model_device
from zoo.scenes import SCENE_SPECS
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, SupervisedTask


def _smp_encoder_exists(smp: Any, name: str) -> bool:
    """smp's own encoders, or ``tu-<name>`` for any timm model (smp's "timm universal" encoders)."""
    if name.startswith("tu-"):
        import timm

        return timm.is_model(name[3:])
    return name in smp.encoders.get_encoder_names()


def _family_widths(w: float) -> dict[str, Any]:
    from zoo.sizing import resnet_widths

    return {**resnet_widths(w), "decoder_channels": tuple(max(1, round(w * b)) for b in (64, 32, 16, 8, 8))}


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
class Segmentation(SupervisedTask):
    name = "segmentation"
    metric = "mIoU"
    width_keys = {"init_channels": 1, "aspp_channels": 1, "decoder_channels": 1}
    supernet_kinds = ("darts", "pc_darts")
    spaces = ("segmentation",)
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
            for key in ("init_channels", "aspp_channels", "decoder_channels")
        },
        "model.drop_path_prob": Number(integer=False, low=0.0, high=1.0, high_open=True),
        "aspp_rates": Number(integer=True, low=1, items=True),
        "baseline.enabled": Flag(),
        "baseline.encoder": Text(null=True),
        "baseline.params": Count(null=True),
        "baseline.tolerance": Number(integer=False, low=0.0, high=1.0, low_open=True),
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
        "scenes": SCENE_SPECS,
        "nuclei": {
            "root": Text(null=True),
            "tile_stride": Number(integer=True, low=1),
            "test_columns": Number(integer=True, low=16),
            **_tiles,
        },
        "masks": {**_folder, "test_fraction": OPEN_FRACTION},
        "voc_seg": {**_folder, "train_split": Text(), "test_split": Text()},
    }
    estimate_metrics = {
        "reward": "mIoU",
        "valid_mIoU": "mIoU",
        "valid_pixel_accuracy": "pixel_accuracy",
        "train_loss": "train_loss",
        "params": "params",
    }
    retrain_metrics = {
        "test_mIoU": "mIoU",
        "test_pixel_accuracy": "pixel_accuracy",
        "test_per_class_IoU": "per_class_IoU",
        "score": "mIoU",
        "params": "params",
        "train_seconds": "train_seconds",
    }
    baseline_metrics = {"test_mIoU_baseline": "mIoU", "test_pixel_accuracy_baseline": "pixel_accuracy", "params_baseline": "params"}

    def setup(self) -> None:
        data: SegmentationData = load(self.data_cfg)
        for split in ("train", "search_train", "search_valid", "test"):
            if not getattr(data, split):
                raise DataError(f"data={self.data_cfg.name}: no {split.replace('_', ' ')} images or tiles")
        if bool(self.cfg.baseline.enabled):
            import segmentation_models_pytorch as smp

            encoder = self.cfg.baseline.get("encoder")
            if encoder is not None and not _smp_encoder_exists(smp, str(encoder)):
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
        return self.data_loader(TileDataset(self.splits[split], augment=shuffle, seed=self.seed), shuffle, batch_size)

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
        m = self.size_config(final)
        out = {"arch": genotype.to_json(), "init_channels": int(m.init_channels), **self._head_args(m)}
        if final:
            out["drop_path_prob"] = float(self.cfg.model.get("drop_path_prob", 0.0))
        return out

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(**self.model_config(genotype, final))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, ignore_index=self.ignore_index)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """mIoU, per-class IoU and pixel accuracy over ``split``'s tiles."""
        was = model.training
        model.eval()
        K = len(self.classes)
        conf = np.zeros((K, K), dtype=np.int64)
        device = model_device(model)
        for x, y in self.loader(split, False):
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

    def example_input(self) -> torch.Tensor:
        """One validation tile: the size every candidate is trained and scored on."""
        return TileDataset(self.splits["search_valid"], augment=False)[0][0][None]

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

    def create_baseline(self, searched_params: int) -> tuple[nn.Module, dict[str, Any]]:
        """smp ``Unet`` on a random-init encoder, normalisation in front (it takes [0, 1] images too), inputs padded
        to a multiple of 32 (as smp's encoders need) and outputs cropped back: with ``task.baseline.encoder`` that
        named encoder; else the timm ResNet-18 family member (:meth:`unet_family`) closest to ``task.baseline.params``
        parameters, by default the searched model's ``searched_params``."""
        import segmentation_models_pytorch as smp

        from zoo.models import Normalize
        from zoo.sizing import fit_params, target_params

        encoder = self.cfg.baseline.get("encoder")
        if encoder is not None:
            torch.manual_seed(self.seed)
            unet = smp.Unet(encoder_name=str(encoder), encoder_weights=None, in_channels=int(self.data.in_chans), classes=len(self.classes))
            return PadTo(nn.Sequential(Normalize(self.mean, self.std), unet)), {
                "model": f"segmentation-models-pytorch Unet, encoder {encoder} (random init)"
            }

        def member(w: float) -> nn.Module:
            torch.manual_seed(self.seed)
            return PadTo(nn.Sequential(Normalize(self.mean, self.std), self.unet_family(w)))

        sized = fit_params(member, target_params(self.cfg.baseline, searched_params), 0.25, 8.0)
        widths = _family_widths(sized.width)
        return sized.model, {
            "model": (
                f"segmentation-models-pytorch Unet on a timm ResNet-18 encoder (random init), stage widths {list(widths['channels'])}, "
                f"decoder {list(widths['decoder_channels'])}"
            ),
            **sized.report(float(self.cfg.baseline.get("tolerance", 0.1))),
        }

    def unet_family(self, w: float) -> nn.Module:
        """The hand-made family: smp ``Unet`` on timm's ResNet-18 (random init) with every width scaled by ``w``
        (``w = 1``: stem 8, stages 8-64, decoder 64-8 channels, about 0.33M parameters with 2 classes)."""
        import segmentation_models_pytorch as smp

        widths = _family_widths(w)
        return smp.Unet(
            encoder_name="tu-resnet18",
            encoder_weights=None,
            in_channels=int(self.data.in_chans),
            classes=len(self.classes),
            decoder_channels=widths["decoder_channels"],
            channels=widths["channels"],  # passed through smp to timm's ResNet
            stem_width=widths["stem_width"],
        )

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
