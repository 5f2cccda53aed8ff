"""What the hub needs to know per task, keyed by the bundle's ``task`` name.

A task plugs into the hub with one :class:`HubTask` registered here: how its inputs are
prepared (written into ``config.json`` and the model card), an example input for
export and parity checks, and whether the timm registry can serve it. Only
``classification`` exists so far; detection, segmentation, translation and rl add
theirs when they land (see :data:`HUB_TASKS`).
"""
from __future__ import annotations

from typing import Any

import torch


class HubTask:
    """Defaults for a task with image input; subclasses override what differs."""

    name = "abstract"
    timm = False  # served by timm.create_model("zoo_NAME")

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        raise NotImplementedError(f"task {self.name!r} does not describe its input for export yet")

    def example_input(self, config: dict[str, Any], batch: int = 2, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand((batch, *self.input_shape(config)), generator=g)

    def output_names(self) -> list[str]:
        return ["output"]


class ClassificationHub(HubTask):
    name = "classification"
    timm = True

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        pre = config.get("preprocessing") or self.preprocessing(config)
        return tuple(int(v) for v in pre["input_size"])

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config.get("data") or {}
        model = config.get("model") or {}
        chans = int(data.get("in_chans") or model.get("in_chans", 3))
        size = int(data.get("image_size") or 32)
        return {
            "input_size": [chans, size, size],
            "color": "grayscale" if chans == 1 else "rgb",
            "resize": f"bilinear to {size}x{size}",
            "scale": "pixel values scaled to [0, 1] (8-bit images: divided by 255)",
            "normalization": "inside the model (mean/std in model args)" if model.get("mean") is not None else "none",
            "mean": model.get("mean"),
            "std": model.get("std"),
        }

    def output_names(self) -> list[str]:
        return ["logits"]


HUB_TASKS: dict[str, HubTask] = {"classification": ClassificationHub()}


def hub_task(name: str) -> HubTask:
    """The hub adapter of a task; unknown tasks get the generic one (bundles still save/load)."""
    return HUB_TASKS.get(name) or HubTask()
