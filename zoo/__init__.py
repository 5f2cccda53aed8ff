"""zoo: task-specific neural architecture search and a zoo of searched models."""
from __future__ import annotations

from typing import Any

from zoo.models import create_model, list_models
from zoo.space.genotype import Genotype

__version__ = "0.1.0"


def from_pretrained(path: str) -> Any:
    """Loads a bundle directory written by a run (``model.safetensors`` + ``config.json``)."""
    from zoo.hub.bundle import load_bundle

    return load_bundle(path)[0]


__all__ = ["create_model", "list_models", "from_pretrained", "Genotype", "__version__"]
