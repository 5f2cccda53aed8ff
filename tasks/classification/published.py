"""The registry entries of the published cells (architecture only): what the papers report.

``scripts/zoo_published_entries.py`` writes them into ``zoo/hub/registry.json``; the
genotypes themselves are :data:`zoo.space.published.PUBLISHED`, built as the CIFAR-10
evaluation network of the DARTS paper (20 cells, 36 channels).
"""

from __future__ import annotations

from typing import Any

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


def published_entries() -> list[dict[str, Any]]:
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
