"""Image classification: stacked DARTS cells + a linear classifier, top-1 accuracy.

Every run also trains a baseline with the same data, epochs and recipe: a random-init timm ResNet-18
whose widths are scaled to the searched network's parameter count (or to ``task.baseline.params``;
:func:`zoo.sizing.fit_params`), with the stride-1 stem of CIFAR ResNets when ``task.stem=cifar``, or
with ``task.baseline.model`` that named timm model at its own size.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.classification.data import ImageData, load, stratified_split
from tasks.classification.metrics import accuracy, classification_loss
from zoo.config_values import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    OPEN_FRACTION,
    POSITIVE_INT,
    ConfigError,
    Count,
    Flag,
    Number,
    OneOf,
    Text,
)
from zoo.estimate.problem import OneShotProblem
from zoo.fit import cosine_per_epoch, fit, sgd
from zoo.models import Normalize, create_model
from zoo.space.network import count_parameters
from zoo.space.pc_supernet import PCSuperNet
from zoo.space.single_path import SinglePathSuperNet
from zoo.space.supernet import SuperNet
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, SupervisedTask

MIN_TEST = 20  # fewer held-out images than this make the reported test accuracy coarse: warn
SUPERNET_KINDS: dict[str, type[nn.Module]] = {"darts": SuperNet, "pc_darts": PCSuperNet, "single_path": SinglePathSuperNet}


@TASKS.register("classification")
class Classification(SupervisedTask):
    name = "classification"
    metric = "accuracy"
    width_keys = {"init_channels": 2}  # the cells' channels at the stem (x2 per reduction; the imagenet stem halves it)
    supernet_kinds = tuple(SUPERNET_KINDS)
    trainer_specs = {
        **COMMON_TRAINER_SPECS,
        "aux_weight": NON_NEGATIVE,  # the auxiliary head's loss weight (DARTS evaluation protocol)
        "drop_path_prob": Number(integer=False, low=0, high=1, high_open=True),
        "num_workers": NON_NEGATIVE_INT,  # DataLoader processes (0: batches are cut in this process)
    }
    config_specs = {
        "stem": OneOf(("cifar", "imagenet")),
        "model.init_channels": POSITIVE_INT,
        "model.layers": POSITIVE_INT,
        "model.auxiliary": Flag(),
        "baseline.enabled": Flag(),
        "baseline.model": Text(null=True),
        "baseline.params": Count(null=True),
        "baseline.tolerance": Number(integer=False, low=0.0, high=1.0, low_open=True),
        "estimate_model.init_channels": POSITIVE_INT,
        "estimate_model.layers": POSITIVE_INT,
        "supernet.init_channels": POSITIVE_INT,
        "supernet.layers": POSITIVE_INT,
        "supernet.multiplier": POSITIVE_INT,
    }
    data_specs = {
        "digits": {"test_fraction": OPEN_FRACTION},
        "fashion_mnist": {
            "root": Text(null=True),
            "download": Flag(),
            "max_train": Number(integer=True, low=20, null=True),
            "max_test": Number(integer=True, low=1, null=True),
        },
        "folder": {
            "root": Text(null=True),  # null: the loader says how to set it
            "image_size": Number(integer=True, low=4),
            "grayscale": Flag(),
            "max_per_class": Number(integer=True, low=2, null=True),
            "test_fraction": OPEN_FRACTION,
        },
    }
    estimate_metrics = {"reward": "accuracy", "valid_accuracy": "accuracy", "params": "params"}
    retrain_metrics = {"test_accuracy": "accuracy", "score": "accuracy", "params": "params"}
    baseline_metrics = {"test_accuracy_baseline": "accuracy", "params_baseline": "params"}

    @classmethod
    def check_config(cls, cfg: Any, data_cfg: Any) -> None:
        from zoo.sizing import check_timm_model

        super().check_config(cfg, data_cfg)
        check_timm_model("task.baseline.model", cfg.get("baseline", {}).get("model") if cfg is not None else None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if str(self.cfg.get("stem", "cifar")) == "cifar":  # only the imagenet stem halves the channels
            self.width_keys = {"init_channels": 1}
        steps = getattr(self.space, "steps", None)
        multiplier = self.cfg.supernet.get("multiplier", 4)
        if steps is not None and multiplier > steps:
            raise ConfigError(
                f"task.supernet.multiplier={multiplier} is invalid; allowed: 1 ... space.steps ({steps}), the cell's nodes concatenated"
            )

    def setup(self) -> None:
        data: ImageData = load(self.data_cfg)
        if len(data.classes) < 2:
            raise DataError(f"data {self.data_cfg.name!r} has {len(data.classes)} class; classification needs at least 2")
        self.classes = data.classes
        self.in_chans = data.in_chans
        self.image_size = int(data.x.shape[-1])
        if data.x_test is not None:
            x_trainval, y_trainval, x_test, y_test = data.x, data.y, data.x_test, data.y_test
        else:
            rest, held = stratified_split(data.y, float(self.data_cfg.get("test_fraction", 0.2)), self.seed)
            x_trainval, y_trainval, x_test, y_test = data.x[rest], data.y[rest], data.x[held], data.y[held]
        tr, va = stratified_split(y_trainval, 0.5, self.seed + 1)
        self.mean = x_trainval.mean(dim=(0, 2, 3)).tolist()
        self.std = [max(s, 1e-3) for s in x_trainval.std(dim=(0, 2, 3)).tolist()]
        self.splits = {
            "search_train": (x_trainval[tr], y_trainval[tr]),
            "search_valid": (x_trainval[va], y_trainval[va]),
            "train": (x_trainval, y_trainval),
            "test": (x_test, y_test),
        }
        if 0 < len(y_test) < MIN_TEST:
            print(
                f"zoo: warning: the test split has {len(y_test)} images, so test accuracy moves in steps of {1 / len(y_test):.2f}; "
                f"more images per class or a larger data.test_fraction make it meaningful",
                file=sys.stderr,
            )
        # every class in every split (test only when it is cut from the same images): a class missing from
        # search-valid is never scored by the search, one missing from the test split never tested
        splits = [k for k in self.splits if k != "test" or data.x_test is None]
        counts = np.bincount(data.y.numpy(), minlength=len(self.classes))
        for c in np.argsort(counts, kind="stable"):
            missing = next((k for k in splits if not bool((self.splits[k][1] == int(c)).any())), None)
            if missing is not None:
                raise DataError(
                    f"data={self.data_cfg.name} has too few images for a {missing.replace('_', '-')} split: class {self.classes[c]!r} has "
                    f"{counts[c]}; allowed: at least 3 images per class (test, search-train and search-valid)"
                )

    def describe_data(self) -> dict[str, Any]:
        return {
            "name": self.data_cfg.name,
            "classes": self.classes,
            "image_size": self.image_size,
            "in_chans": self.in_chans,
            **{f"n_{k}": int(len(v[1])) for k, v in self.splits.items()},
        }

    def loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        x, y = self.splits[split]
        return self.data_loader(TensorDataset(x, y), shuffle, batch_size)

    # ---- models
    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        m = self.size_config(final)
        return {
            "arch": genotype.to_json(),
            "num_classes": len(self.classes),
            "init_channels": int(m.init_channels),
            "layers": int(m.layers),
            "auxiliary": bool(m.get("auxiliary", False)) and final,
            "in_chans": self.in_chans,
            "stem": str(self.cfg.get("stem", "cifar")),
            "mean": self.mean,
            "std": self.std,
        }

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        torch.manual_seed(self.seed)
        return create_model(**self.model_config(genotype, final))

    def make_supernet(self, kind: str = "darts", **kwargs: Any) -> nn.Module:
        """A supernet of ``kind`` (darts, pc_darts, single_path) with ``task.supernet``'s size; kwargs are kind-specific."""
        if kind not in SUPERNET_KINDS:
            raise ValueError(f"supernet kind {kind!r} is unknown; allowed: {', '.join(SUPERNET_KINDS)}")
        s = self.cfg.supernet
        torch.manual_seed(self.seed)
        return SUPERNET_KINDS[kind](
            num_classes=len(self.classes),
            init_channels=int(s.init_channels),
            layers=int(s.layers),
            steps=int(self.space.steps),  # type: ignore[attr-defined]
            multiplier=int(s.get("multiplier", 4)),
            in_chans=self.in_chans,
            stem=str(self.cfg.get("stem", "cifar")),
            primitives=list(self.space.primitives),  # type: ignore[attr-defined]
            **kwargs,
        )

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, self.in_chans, self.image_size, self.image_size)

    def one_shot_problem(self) -> OneShotProblem:
        net = self.make_supernet("darts")
        norm = Normalize(self.mean, self.std).to(self.device)

        def loss(model: nn.Module, batch: Any) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(model(norm(x)), y)

        def score(model: nn.Module, loader: Any) -> float:
            return accuracy(nn.Sequential(norm, _Forward(model)), loader)

        return OneShotProblem(
            net,
            self.loader("search_train", True),
            self.loader("search_valid", True),
            loss,
            score,
            device=self.device,
            make_supernet=self.make_supernet,
            space=self.space,
            amp=self.amp,
        )

    # ---- estimation and retraining
    def fit(
        self,
        model: nn.Module,
        split: str,
        epochs: int,
        desc: str,
        checkpoint: Any = None,
        *,
        lr: float | None = None,
        drop_path_prob: float | None = None,
    ) -> float:
        """SGD with a per-epoch cosine rate, the auxiliary-head loss and drop-path growing linearly over
        the epochs (the DARTS evaluation protocol); ``lr``/``drop_path_prob`` default to ``trainer.*``."""
        t = self.trainer_cfg
        drop = float(t.drop_path_prob) if drop_path_prob is None else drop_path_prob

        def grow_drop_path(epoch: int) -> None:
            if hasattr(model, "drop_path_prob"):
                model.drop_path_prob = drop * epoch / epochs

        return fit(
            model,
            self.loader(split, True),
            epochs,
            loss=self.loss,
            optimizer=sgd(float(t.lr) if lr is None else lr, weight_decay=float(t.weight_decay)),
            schedule=cosine_per_epoch(),
            grad_clip=float(t.grad_clip),
            device=self.device,
            before_epoch=grow_drop_path,
            desc=desc,
            progress=self.progress,
            checkpoint=checkpoint,
            amp=self.amp,
        )

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Cross-entropy, plus ``trainer.aux_weight`` times the auxiliary head's."""
        return classification_loss(model, batch, float(self.trainer_cfg.aux_weight))

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        return {"accuracy": accuracy(model, self.loader(split, False))}

    def test(self, model: nn.Module, key: str) -> dict[str, Any]:
        """Top-1 accuracy on the held-out test split (the model left in eval mode)."""
        model.eval()
        return self.evaluate(model, "test")

    def count_parameters(self, model: nn.Module) -> int:
        """Parameters without the auxiliary head's (it is dropped after training)."""
        return count_parameters(model)

    def create_baseline(self, searched_params: int) -> tuple[nn.Module, dict[str, Any]]:
        """A random-init timm model with normalisation in front: ``task.baseline.model`` when named, else the ResNet-18
        family member (stem 8w, stages 8w-64w channels, two blocks each) closest to ``task.baseline.params`` parameters,
        by default the searched network's ``searched_params``; with ``task.stem=cifar`` its stem keeps the resolution
        (stride-1 convolution, no max-pool), as CIFAR ResNets do and as the searched network's stem does."""
        import timm

        from zoo.sizing import fit_params, resnet_widths, target_params

        cifar = str(self.cfg.get("stem", "cifar")) == "cifar"
        stem = "stride-1 stem, no max-pool" if cifar else "ImageNet stem"

        def timm_model(name: str, **kwargs: Any) -> nn.Module:
            torch.manual_seed(self.seed)
            net = timm.create_model(name, pretrained=False, num_classes=len(self.classes), in_chans=self.in_chans, **kwargs)
            if cifar and hasattr(net, "conv1") and hasattr(net, "maxpool"):
                net.conv1.stride = (1, 1)
                net.maxpool = nn.Identity()
            return nn.Sequential(Normalize(self.mean, self.std), net)

        named = self.cfg.baseline.get("model")
        if named is not None:
            return timm_model(str(named)), {"model": f"timm {named} (random init, {stem})"}
        target = target_params(self.cfg.baseline, searched_params)
        sized = fit_params(lambda w: timm_model("resnet18", **resnet_widths(w)), target, 0.125, 16.0, counter=count_parameters)
        return sized.model, {
            "model": f"timm ResNet-18 (random init, {stem}), stage widths {list(resnet_widths(sized.width)['channels'])}",
            **sized.report(float(self.cfg.baseline.get("tolerance", 0.1))),
        }


class _Forward(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
