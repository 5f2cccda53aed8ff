"""What the hub knows of segmentation bundles: images of any size in, per-pixel class logits out."""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts


@HUB_FACTS.register("segmentation")
class SegmentationHub(HubFacts):
    """The segmenter is fully convolutional and restores the input size; an exported graph is
    traced for one H x W (default: the training tile), the batch size stays free."""

    name = "segmentation"
    default_size = 64  # conf/data/*.yaml's tile_size
    export_rtol = 1e-4  # logits pass ~20 layers of float32 convolutions: ONNX Runtime rounds differently

    @staticmethod
    def _data(config: dict[str, Any]) -> dict[str, Any]:
        run_data = (config.get("run_config") or {}).get("data") or {}
        return {**run_data, **(config.get("data") or {})}

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        pre = config.get("preprocessing") or self.preprocessing(config)
        return tuple(int(v) for v in pre["input_size"])

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = self._data(config)
        model = config.get("model") or {}
        chans = int(data.get("in_chans") or model.get("in_chans", 3))
        tile = data.get("tile_size") or self.default_size
        size = int(tile[0] if isinstance(tile, (list, tuple)) else tile)
        scale = float(data.get("scale") or 1.0)
        rescale = f"rescale images by {scale:g} (bilinear) as in training; " if scale != 1.0 else ""
        pixel = (
            "per image: (x - p1) / (p99.8 - p1) clipped to [0, 1], p = percentiles (as data=nuclei does)"
            if data.get("name") == "nuclei"
            else "pixel values scaled to [0, 1]: 8-bit images divided by 255, 16-bit by 65535, other integer or float images by their own min and max"
        )
        return {
            "input_size": [chans, size, size],
            "color": "grayscale" if chans == 1 else "rgb",
            "resize": f"{rescale}trained on {size}x{size} tiles; the network is fully convolutional and takes whole images of any size",
            "scale": pixel,
            "normalization": "inside the model (mean/std in model args)" if model.get("mean") is not None else "none",
            "mean": model.get("mean"),
            "std": model.get("std"),
            "outputs": "logits (N, K, H, W) at the input size; the class of a pixel is their argmax",
            "export": f"ONNX/TorchScript graphs take one fixed H x W (default {size}x{size}; python -m zoo.hub export ... --input-size H W)",
        }

    def output_names(self) -> list[str]:
        return ["logits"]

    def headline(self, metrics: dict[str, Any]) -> str | None:
        if "test_mIoU" in metrics:
            return f"mIoU {metrics['test_mIoU']:.3f}"
        if "reported_cityscapes_val_mIoU" in metrics:
            return f"Cityscapes val mIoU {metrics['reported_cityscapes_val_mIoU']:.1f} (paper)"
        return None

    def card_usage(self, ref: str) -> list[str]:
        return [
            "Fine-tune on your own masks (`images/` + `masks/` paired by file stem, PNG masks of class indices; or `data=voc_seg`):",
            "",
            "```bash",
            f"python -m zoo task=segmentation mode=finetune checkpoint={ref} data=masks data.root=/path/to/data",
            "```",
            "",
            "Use it as an encoder of segmentation-models-pytorch (any of its decoders):",
            "",
            "```python",
            "import segmentation_models_pytorch as smp",
            "from tasks.segmentation.integrations.smp import register_smp",
            f'register_smp(["{ref}"])',
            f'model = smp.Unet(encoder_name="zoo-{ref}", encoder_weights=None, classes=3)',
            "```",
            "",
            "Export to ONNX or TorchScript (one fixed H x W, `--input-size H W`):",
            "",
            "```bash",
            f"python -m zoo.hub export {ref} --format onnx",
            "```",
            "",
        ]
