"""Checkpoint bundles: ``model.safetensors`` + ``config.json`` + ``README.md`` (model card).

``config.json`` holds everything needed to rebuild the model with no other file:
``model`` (the keyword arguments of :func:`zoo.create_model`, genotype included),
``task``, ``labels``, ``preprocessing``, ``metrics``, the run's resolved config, the
reproducing ``command`` and the licence. Weights are safetensors; nothing is ever
unpickled. A bundle may also travel as one ``.tar``/``.zip`` file (:mod:`zoo.hub.archive`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.atomic import as_umask_allows, save_json_atomic

FORMAT_VERSION = 1


class BundleError(ValueError):
    """A bundle that cannot be loaded; one line naming the file and the problem."""


def save_bundle(directory: str | Path, model: nn.Module, config: dict[str, Any], card: bool = True) -> Path:
    """Writes ``model.safetensors``, ``config.json`` and the model card atomically into ``directory``.

    Fills in what ``config`` lacks: ``preprocessing`` (from the task's hub adapter),
    ``command`` (from Hydra's ``.hydra/overrides.yaml`` in ``directory``), ``zoo_version``
    and ``git_commit``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model.", suffix=".safetensors")
    os.close(fd)
    save_file(state, tmp, metadata={"format": "pt", "zoo_format_version": str(FORMAT_VERSION)})
    as_umask_allows(tmp)
    os.replace(tmp, directory / "model.safetensors")
    config = complete_config(directory, config)
    save_json_atomic(directory / "config.json", {"format_version": FORMAT_VERSION, **config})
    if card:
        write_card(directory)
    return directory


def complete_config(directory: Path, config: dict[str, Any], stamp: bool = True) -> dict[str, Any]:
    """``config`` plus derived fields it lacks; ``stamp`` adds this code's version and commit."""
    from zoo.hub.facts import hub_facts
    from zoo.version import __version__

    config = dict(config)
    if not config.get("preprocessing"):
        pre = hub_facts(str(config.get("task"))).preprocessing(config)
        if pre:
            config["preprocessing"] = pre
    if not config.get("command"):
        command = command_from_hydra(directory)
        if command:
            config["command"] = command
    if stamp:
        config.setdefault("zoo_version", __version__)
        commit = git_commit()
        if commit:
            config.setdefault("git_commit", commit)
    return config


def command_from_hydra(directory: Path, ignore: tuple[str, ...] = ("hydra.", "progress=", "threads=", "device=")) -> str | None:
    """``python -m zoo OVERRIDES`` from the run's ``.hydra/overrides.yaml`` (run-only keys dropped)."""
    path = Path(directory) / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    overrides = [str(o) for o in OmegaConf.load(path) or []]  # type: ignore[union-attr]
    kept = [o for o in overrides if not o.lstrip("+~").startswith(ignore)]
    return " ".join(["python -m zoo", *(shlex.quote(o) for o in kept)])


def git_commit() -> str | None:
    """The zoo source tree's commit, when it is a git checkout; ``+dirty`` when tracked files differ from it."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() if out.returncode == 0 else ""
    if not commit:
        return None
    try:
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return commit
    return commit + "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else commit


def write_card(directory: str | Path, name: str | None = None) -> Path:
    """(Re)writes ``README.md`` from ``config.json``."""
    from zoo.hub.card import render_card

    directory = Path(directory)
    path = directory / "README.md"
    tmp = directory / f".README.md.{os.getpid()}"
    tmp.write_text(render_card(read_config(directory), name=name))
    os.replace(tmp, path)
    return path


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
    """Rebuilds the model from ``config.json`` and loads ``model.safetensors`` of a bundle directory.

    Archives and zoo names become directories through :func:`zoo.hub.api.resolve_bundle`
    (``zoo.from_pretrained`` takes all three).
    """
    from zoo.models import create_model

    directory = Path(directory)
    if directory.is_file():
        raise BundleError(
            f"{directory} is a file; load_bundle takes a bundle directory (zoo.from_pretrained or zoo.hub.api.resolve_bundle open archives)"
        )
    cfg = read_config(directory)
    model = create_model(task=cfg.get("task"), **cfg["model"])
    load_state(model, Path(directory) / "model.safetensors")
    model.eval()
    return model, cfg
