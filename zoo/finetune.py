"""Fine-tuning a searched checkpoint on new data (``python -m zoo mode=finetune checkpoint=...``).

The searched body keeps its weights; the head is replaced when the label set differs
(and the stem adapted when the number of input channels differs, as when a grayscale
digits model meets RGB photos). For the first ``finetune.freeze_epochs`` epochs only
the head trains, with the body's weights and batch-norm statistics frozen (linear
probing, then full fine-tuning: Kumar et al., "Fine-Tuning can Distort Pretrained
Features", ICLR 2022). The model is evaluated on the task's held-out test split and
written as a new bundle in the run directory.

Each task plugs in one function with ``@finetuner("task")`` (in ``tasks/<name>/finetune.py``,
registered in :data:`FINETUNERS`); the task plug-in, built by :func:`zoo.build.make_task`
as for a search, provides the data. This module holds what every fine-tuner shares: the job,
the epoch stretching, fitting a parent's tensors to the new model and freezing the body.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zoo.build import make_task
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, ConfigError, Flag, check_values
from zoo.device import resolve_device
from zoo.registry import Registry
from zoo.space.genotype import save_json_atomic


@dataclass
class FinetuneJob:
    cfg: DictConfig
    run_dir: Path
    checkpoint: str  # as given: a zoo name or a path
    bundle_dir: Path
    parent: dict[str, Any]  # the checkpoint's config.json
    started: float


Finetuner = Callable[[FinetuneJob], tuple[nn.Module, dict[str, Any], dict[str, Any]]]
FINETUNERS: Registry[Finetuner] = Registry("fine-tuner", plugins=True)
FINETUNE_SPECS = {
    "epochs": POSITIVE_INT,
    "freeze_epochs": NON_NEGATIVE_INT,
    "lr": POSITIVE,
    "match_input": Flag(),
    "min_steps": NON_NEGATIVE_INT,
}


def scaled_epochs(f: Any, steps_per_epoch: int) -> tuple[int, int]:
    """(epochs, freeze_epochs) stretched by one integer factor until training takes at least
    ``finetune.min_steps`` optimiser steps: six epochs of a 150-image folder are 18 steps, too
    few to move a new head, while a large data set keeps the epochs it was given."""
    epochs, frozen = int(f.epochs), int(f.freeze_epochs)
    need = int(f.get("min_steps", 0) or 0)
    factor = max(1, -(-need // max(1, epochs * steps_per_epoch)))
    return epochs * factor, frozen * factor


def finetuner(task: str) -> Callable[[Finetuner], Finetuner]:
    """Registers the fine-tuning function of ``task``: job -> (model, bundle config, metrics)."""

    return FINETUNERS.register(task)


def _registries(cfg: DictConfig) -> Any:
    hub = cfg.get("hub") or {}
    reg = hub.get("registry") if hasattr(hub, "get") else None
    return OmegaConf.to_container(reg) if OmegaConf.is_list(reg) else reg


def checkpoint_task(cfg: DictConfig, mode: str = "finetune") -> str:
    """The task of ``cfg.checkpoint`` without downloading it; one-line errors for a bad one (``mode`` names the mode in them)."""
    from zoo.hub.bundle import read_config
    from zoo.hub.registry import get_entry

    ckpt = cfg.get("checkpoint")
    if not ckpt:
        raise ConfigError(
            f"mode={mode} needs checkpoint=NAME_OR_PATH (a zoo name from `python -m zoo.hub list`, a bundle directory or archive)"
        )
    p = Path(str(ckpt)).expanduser()
    if p.is_dir():
        return str(read_config(p).get("task"))
    if p.is_file():
        return str(read_config(_unpacked(p)).get("task"))
    if "/" in str(ckpt):
        raise ConfigError(f"checkpoint={ckpt} does not exist (expected a bundle directory, a .tar/.zip bundle or a zoo name)")
    entry = get_entry(str(ckpt), _registries(cfg))
    if not entry.has_weights:
        raise ConfigError(
            f"checkpoint={ckpt} is architecture-only (no weights to {'fine-tune' if mode == 'finetune' else 'run'}); "
            "train it with mode=search or pick an entry with weights"
        )
    return entry.task


def _unpacked(archive: Path) -> Path:
    from zoo.hub.archive import unpack_cached

    return unpack_cached(archive)


def check_finetune(cfg: DictConfig) -> None:
    """Everything checkable before data is loaded or weights fetched."""
    f = cfg.get("finetune")
    if f is None:
        raise ConfigError("mode=finetune needs the finetune: config section (zoo/conf/finetune/default.yaml)")
    check_values(f, FINETUNE_SPECS, "finetune")
    resolve_device(cfg.get("device", "auto"))  # before the checkpoint is looked up (make_task below passes it to the task)
    if f.freeze_epochs > f.epochs:
        raise ConfigError(f"finetune.freeze_epochs={f.freeze_epochs} is invalid; allowed: 0 ... finetune.epochs ({f.epochs})")
    task = checkpoint_task(cfg)
    if task != cfg.task.name:
        raise ConfigError(f"checkpoint={cfg.checkpoint} is a {task} checkpoint but task={cfg.task.name}; pass task={task}")
    if task not in FINETUNERS:
        raise ConfigError(f"fine-tuning is not implemented for task {task!r} yet; allowed: {', '.join(FINETUNERS.names())}")
    make_task(cfg, cfg.data)  # the task plug-in's own checks (e.g. detection data for task=detection); no data loaded


def finetune_task(job: FinetuneJob, data_cfg: Any = None) -> Any:
    """The task on the fine-tuning data, set up (data read and checked). ``data_cfg``: default a
    resolved copy of ``cfg.data`` (a fine-tuner may adjust it first, as classification's does)."""
    task = make_task(job.cfg, data_cfg if data_cfg is not None else OmegaConf.create(OmegaConf.to_container(job.cfg.data, resolve=True)))
    task.setup()
    return task


def bundle_config(
    job: FinetuneJob, args: dict[str, Any], labels: list[str], data: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """The new bundle's ``config.json``: the fine-tuned model, its data and metrics, and where it came from."""
    parent = job.parent
    search = parent.get("search") or {}
    return {
        "task": job.cfg.task.name,
        "model": args,
        "labels": labels,
        "data": data,
        "metrics": metrics,
        "search": search,
        "finetuned_from": {
            "checkpoint": job.checkpoint,
            "strategy": search.get("strategy"),
            "labels": parent.get("labels"),
            "metrics": parent.get("metrics"),
            "weights_sha256": _sha(job.bundle_dir / "model.safetensors"),
        },
        "run_config": OmegaConf.to_container(job.cfg, resolve=True),
        "license": parent.get("license") or "Apache-2.0",
    }


def run_finetune(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    from zoo.hub.api import resolve_bundle
    from zoo.hub.bundle import read_config, save_bundle

    check_finetune(cfg)
    bundle_dir, _ = resolve_bundle(str(cfg.checkpoint), _registries(cfg), progress=bool(cfg.progress))
    job = FinetuneJob(cfg, run_dir, str(cfg.checkpoint), bundle_dir, read_config(bundle_dir), time.time())
    model, config, metrics = FINETUNERS.get(cfg.task.name)(job)
    metrics["finetune_seconds"] = round(time.time() - job.started, 1)
    save_bundle(run_dir, model, config)
    save_json_atomic(run_dir / "metrics.json", metrics)
    lines = [
        "",
        f"zoo fine-tune finished in {metrics['finetune_seconds']:.0f}s -> {run_dir}",
        f"  from      {job.checkpoint} ({bundle_dir})",
    ]
    for k, v in metrics.items():
        if k != "finetune_seconds":
            lines.append(f"  {k:<22}{v:.4f}" if isinstance(v, float) else f"  {k:<22}{v}")
    lines.append(f"  files     {', '.join(p.name for p in sorted(run_dir.iterdir()) if p.is_file() and not p.name.startswith('.'))}")
    print("\n".join(lines), file=sys.stdout, flush=True)
    return metrics


def adapt_state(state: dict[str, torch.Tensor], model: nn.Module, is_head: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """The parent's tensors fitted to ``model``: a head tensor (``is_head``) of another size is dropped
    (re-initialised); a stem conv or normalisation of another channel count is adapted (averaged / repeated)."""
    target = model.state_dict()
    out = {}
    for k, v in state.items():
        if k not in target:
            raise ConfigError(f"the checkpoint's tensor {k!r} has no place in the fine-tuned model")
        t = target[k]
        if v.shape == t.shape:
            out[k] = v
        elif is_head(k):
            continue
        elif k.endswith(("normalize.mean", "normalize.std")):
            out[k] = t  # the model was built with the channel-averaged statistics
        elif v.dim() == 4 and v.shape[0] == t.shape[0] and v.shape[2:] == t.shape[2:]:
            # stem convolution with another input channel count: keep the response to a gray image
            out[k] = v.sum(dim=1, keepdim=True).repeat(1, t.shape[1], 1, 1) / t.shape[1]
        else:
            raise ConfigError(f"the checkpoint's tensor {k!r} has shape {tuple(v.shape)}; the fine-tuned model needs {tuple(t.shape)}")
    return out


def freeze_body(model: nn.Module, frozen: bool, is_head: Callable[[str], bool]) -> None:
    """Head-only training: body parameters (all but ``is_head`` names) stop learning and batch-norm statistics stop moving."""
    for n, p in model.named_parameters():
        p.requires_grad_(is_head(n) or not frozen)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if frozen:
                m._zoo_saved = (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())  # type: ignore[assignment]
                m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: the statistics stay put
            elif hasattr(m, "_zoo_saved"):
                m.momentum, tracked = m._zoo_saved  # type: ignore[misc]
                if tracked is not None:
                    m.num_batches_tracked.copy_(tracked)  # type: ignore[union-attr]
                del m._zoo_saved


def _sha(path: Path) -> str:
    from zoo.hub.download import sha256_file

    return sha256_file(path)
