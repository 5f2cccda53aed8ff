"""The registry entry of the published Auto-DeepLab architecture (architecture only): what the paper reports.

``scripts/zoo_published_entries.py`` writes it into ``zoo/hub/registry.json``; the genotype is
:data:`tasks.segmentation.space.AUTODEEPLAB`, built at Auto-DeepLab-L's width (F = 48) for
Cityscapes' 19 classes.
"""

from __future__ import annotations

from typing import Any

PAPER = "Liu et al., Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image Segmentation, CVPR 2019"


def published_entries() -> list[dict[str, Any]]:
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
