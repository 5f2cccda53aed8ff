"""What the hub knows of classification bundles: input size and colour, logits out, served by timm.

Also the architecture-only registry entries of the published cells (:data:`zoo.space.published.PUBLISHED`:
what the papers report, built as the CIFAR-10 evaluation network of the DARTS paper, 20 cells, 36 channels),
which ``scripts/zoo_published_entries.py`` writes into ``zoo/hub/registry.json``.
"""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts

PUBLISHED_INFO: dict[str, dict[str, Any]] = {
    "darts_v1": {
        "paper": "Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019 (first order)",
        "cifar10_test_error_pct": 3.00,
        "search_method": "darts (first order)",
    },
    "darts_v2": {
        "paper": "Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019 (second order)",
        "cifar10_test_error_pct": 2.76,
        "search_method": "darts (second order)",
    },
    "nasnet_a": {
        "paper": "Zoph et al., Learning Transferable Architectures for Scalable Image Recognition, CVPR 2018",
        "cifar10_test_error_pct": 2.65,
        "search_method": "reinforcement learning",
    },
    "amoebanet_a": {
        "paper": "Real et al., Regularized Evolution for Image Classifier Architecture Search, AAAI 2019",
        "cifar10_test_error_pct": 3.34,
        "search_method": "regularized evolution",
    },
    "pnas": {
        "paper": "Liu et al., Progressive Neural Architecture Search, ECCV 2018",
        "cifar10_test_error_pct": 3.41,
        "search_method": "progressive (SMBO)",
    },
}


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

    def published_entries(self) -> list[dict[str, Any]]:
        """Architecture-only entries for the published genotypes (the CIFAR-10 evaluation network)."""
        from zoo.models import PUBLISHED, create_model
        from zoo.space.network import count_parameters

        out = []
        for key, info in PUBLISHED_INFO.items():
            model_args = {
                "arch": PUBLISHED[key].to_json(),
                "num_classes": 10,
                "init_channels": 36,
                "layers": 20,
                "auxiliary": False,
                "in_chans": 3,
                "stem": "cifar",
            }
            params = count_parameters(create_model(**model_args))
            out.append(
                {
                    "name": key,
                    "task": "classification",
                    "dataset": "cifar10 (as published; no weights here)",
                    "description": f"architecture only: {info['paper']}",
                    "strategy": info["search_method"],
                    "space": "darts",
                    "metrics": {"reported_cifar10_test_error_pct": info["cifar10_test_error_pct"]},
                    "params": params,
                    "license": "Apache-2.0",
                    "model": model_args,
                    "paper": info["paper"],
                    "note": "params are those of zoo's 20-cell, 36-channel CIFAR network built from the genotype; the paper's network may differ in width",
                    "reproduce": f"python -c \"import zoo; print(zoo.create_model('{key}'))\"",
                    "files": [],
                }
            )
        return out
