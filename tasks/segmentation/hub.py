"""What the hub knows of segmentation bundles: images of any size in, per-pixel class logits out.

Also the architecture-only registry entry of the published Auto-DeepLab (what the paper reports;
:data:`tasks.segmentation.space.AUTODEEPLAB` built at Auto-DeepLab-L's width, F = 48, for Cityscapes' 19
classes), which ``scripts/zoo_published_entries.py`` writes into ``zoo/hub/registry.json``.
"""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts

PAPER = "Liu et al., Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image Segmentation, CVPR 2019"


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

    def published_entries(self) -> list[dict[str, Any]]:
        """Architecture-only registry entries (see :meth:`HubFacts.published_entries`)."""
        from tasks.segmentation.space import AUTODEEPLAB
        from zoo.models import create_model

        model_args = {
            "arch": AUTODEEPLAB.to_json(),
            "num_classes": 19,
            "init_channels": 48,
            "in_chans": 3,
            "stem_channels": 128,
            "aspp_channels": 256,
            "aspp_rates": [12, 24, 36],
            "decoder_channels": 256,
        }
        params = sum(p.numel() for p in create_model(**model_args).parameters())
        return [
            {
                "name": "autodeeplab",
                "task": "segmentation",
                "dataset": "cityscapes (as published; no weights here)",
                "description": f"architecture only: {PAPER}",
                "strategy": "darts (cell + network-level path, Auto-DeepLab)",
                "space": "segmentation",
                "metrics": {"reported_cityscapes_val_mIoU": 80.33},
                "params": params,
                "license": "Apache-2.0",
                "model": model_args,
                "paper": PAPER,
                "note": "Auto-DeepLab-L (F = 48, 12 layers, 5-block cell) without ImageNet pre-training; params are those of zoo's network "
                "built from the genotype (its stem, ASPP and decoder are zoo's), the paper's differs in these parts",
                "reproduce": "python -c \"import zoo; print(zoo.create_model('autodeeplab'))\"",
                "files": [],
            }
        ]
