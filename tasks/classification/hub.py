"""What the hub knows of classification bundles: input size and colour, logits out, served by timm."""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts


@HUB_FACTS.register("classification")
class ClassificationHub(HubFacts):
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

    def headline(self, metrics: dict[str, Any]) -> str | None:
        if "test_accuracy" in metrics:
            return f"accuracy {metrics['test_accuracy']:.4f}"
        if "reported_cifar10_test_error_pct" in metrics:
            return f"cifar10 error {metrics['reported_cifar10_test_error_pct']:.2f}% (paper)"
        return None

    def card_usage(self, ref: str) -> list[str]:
        return [
            "Fine-tune on your own images (one sub-directory per class) and export:",
            "",
            "```bash",
            f"python -m zoo mode=finetune checkpoint={ref} data=folder data.root=/path/to/images",
            f"python -m zoo.hub export {ref} --format onnx",
            "```",
            "",
        ]
