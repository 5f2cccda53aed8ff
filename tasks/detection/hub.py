"""What the hub knows of detection bundles: tile size and strides, dense boxes + scores exported before NMS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoo.hub.facts import HUB_FACTS, HubFacts

if TYPE_CHECKING:  # the hub's list reads these facts without torch
    import torch
    from torch import nn


@HUB_FACTS.register("detection")
class DetectionHub(HubFacts):
    """Images of any size in, per-location boxes and class scores out (:class:`tasks.detection.model.DenseDetector`).

    The detector is fully convolutional, but its exported graph is not: the neck's
    resampling to each level's exact size and the head's grid of points are traced for one
    spatial size, so an export takes exactly that H x W (default: the training tile size).
    """

    name = "detection"
    default_size = 256  # conf/data/{coco,voc}.yaml's tile_size
    export_rtol = 1e-5  # boxes are pixels (distances x strides up to 128): float32 rounding alone exceeds 1e-4

    @staticmethod
    def _data(config: dict[str, Any]) -> dict[str, Any]:
        """What the run recorded of its data: ``data`` (describe_data) over the run config's ``data`` group."""
        run_data = (config.get("run_config") or {}).get("data") or {}
        return {**run_data, **(config.get("data") or {})}

    def _max_stride(self, config: dict[str, Any]) -> int:
        try:
            from zoo.models import resolve_genotype

            return 2 ** int(resolve_genotype((config.get("model") or {}).get("arch")).neck.max_level)
        except Exception:  # a baseline or a genotype this version cannot parse: FCOS's usual P3-P5
            return 32

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        pre = config.get("preprocessing") or self.preprocessing(config)
        return tuple(int(v) for v in pre["input_size"])

    def example_input(self, config: dict[str, Any], batch: int = 2, seed: int = 0, size: Sequence[int] | None = None) -> torch.Tensor:
        x = super().example_input(config, batch, seed, size)
        stride = self._max_stride(config)
        if any(int(v) % stride for v in x.shape[-2:]):
            # the neck pools between levels at exact ratios only when the size divides; otherwise ONNX cannot export it
            raise ValueError(
                f"input size {'x'.join(str(int(v)) for v in x.shape[-2:])} is not a multiple of {stride} (the detector's "
                f"coarsest stride); an exported detector needs one: --input-size H W"
            )
        return x

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = self._data(config)
        model = config.get("model") or {}
        chans = int(data.get("in_chans") or model.get("in_chans", 3))
        size = int(data.get("tile_size") or self.default_size)
        scale = float(data.get("scale") or 1.0)
        stride = self._max_stride(config)
        rescale = f"rescale images by {scale:g} (bilinear) as in training; " if scale != 1.0 else ""
        return {
            "input_size": [chans, size, size],
            "color": "grayscale" if chans == 1 else "rgb",
            "resize": f"{rescale}trained on {size}x{size} crops, but the detector is fully convolutional and takes whole "
            f"images of any size in PyTorch (multiples of {stride}, its coarsest stride, keep every level aligned)",
            "scale": "pixel values scaled to [0, 1] (8-bit images: divided by 255)",
            "normalization": "inside the model (mean/std in model args)" if model.get("mean") is not None else "none",
            "mean": model.get("mean"),
            "std": model.get("std"),
            "outputs": "boxes (N, P, 4) xyxy pixels clipped to the image, scores (N, P, K) = sqrt(sigmoid(class) * sigmoid(centerness))",
            "postprocessing": "keep scores > 0.05, then class-aware NMS at IoU 0.6, at most 100 boxes per image "
            "(model.predict does this; an ONNX/TorchScript export stops before it)",
            "export": f"ONNX/TorchScript graphs take one fixed H x W (default {size}x{size}; "
            f"python -m zoo.hub export ... --input-size H W, multiples of {stride}, for another; pad or resize images "
            "to it and map boxes back), the batch size is free",
        }

    def export_module(self, model: nn.Module) -> nn.Module:
        from tasks.detection.model import DenseDetector, Detector

        return DenseDetector(model) if isinstance(model, Detector) else model

    def output_names(self) -> list[str]:
        return ["boxes", "scores"]

    def headline(self, metrics: dict[str, Any]) -> str | None:
        if "test_mAP50" in metrics and "test_mAP" in metrics:
            return f"mAP@0.5 {metrics['test_mAP50']:.3f}, mAP {metrics['test_mAP']:.3f}"
        return None

    def card_usage(self, ref: str) -> list[str]:
        return [
            "Fine-tune on your own boxes (COCO json: `annotations.json` + `images/`; or `data=voc`):",
            "",
            "```bash",
            f"python -m zoo task=detection mode=finetune checkpoint={ref} data=coco data.root=/path/to/data",
            "```",
            "",
            "Export to ONNX or TorchScript: the graph returns `boxes` (N, P, 4) and per-class `scores` (N, P, K) for every "
            "location, before the score threshold and NMS (run those yourself, see Preprocessing), and takes one fixed "
            "H x W (`--input-size H W`; default the training crop size):",
            "",
            "```bash",
            f"python -m zoo.hub export {ref} --format onnx",
            "```",
            "",
        ]
