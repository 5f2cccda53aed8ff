"""Checkpoint bundles: ``model.safetensors`` + ``config.json`` (+ model card).

``config.json`` holds everything needed to rebuild the model with no other file:
``model`` (the keyword arguments of :func:`zoo.create_model`, genotype included),
``task``, ``labels``, ``metrics`` and the run's resolved config. Weights are
safetensors; nothing is ever unpickled.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.space.genotype import save_json_atomic

FORMAT_VERSION = 1


class BundleError(ValueError):
    """A bundle that cannot be loaded; one line naming the file and the problem."""


def save_bundle(directory: str | Path, model: nn.Module, config: dict[str, Any]) -> Path:
    """Writes ``model.safetensors`` and ``config.json`` atomically into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model.", suffix=".safetensors")
    os.close(fd)
    save_file(state, tmp, metadata={"format": "pt", "zoo_format_version": str(FORMAT_VERSION)})
    os.replace(tmp, directory / "model.safetensors")
    save_json_atomic(directory / "config.json", {"format_version": FORMAT_VERSION, **config})
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise BundleError(f"{path} does not exist")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise BundleError(f"{path} has no 'model' field (the create_model arguments)")
    return cfg


def load_state(model: nn.Module, weights: str | Path) -> None:
    """Loads safetensors weights, refusing a missing or extra tensor by name."""
    weights = Path(weights)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise BundleError(f"{weights} is not a readable safetensors file: {e}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing:
        raise BundleError(f"{weights} lacks tensor {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if extra:
        raise BundleError(f"{weights} has unexpected tensor {extra[0]!r}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise BundleError(f"{weights} tensor {k!r} has shape {tuple(v.shape)}, the model expects {tuple(expected[k].shape)}")
    model.load_state_dict(state, strict=True)


def load_bundle(directory: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds the model from ``config.json`` and loads ``model.safetensors``."""
    from zoo.models import create_model

    cfg = read_config(directory)
    model = create_model(**cfg["model"])
    load_state(model, Path(directory) / "model.safetensors")
    model.eval()
    return model, cfg
