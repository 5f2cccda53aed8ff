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
the epoch stretching, fitting a parent's tensors to the new model (:func:`adapted_model`),
freezing the body (:func:`frozen_body`) and the sequence of a supervised task's fine-tuning
(:func:`train_head_then_all`: test, head alone, everything, test).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zoo.atomic import save_json_atomic
from zoo.build import make_task
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, ConfigError, Flag, check_values
from zoo.device import resolve_device
from zoo.registry import Registry
from zoo.task import SupervisedTask


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
    from zoo.hub.api import locate_bundle
    from zoo.hub.bundle import read_config

    ckpt = cfg.get("checkpoint")
    if not ckpt:
        raise ConfigError(
            f"mode={mode} needs checkpoint=NAME_OR_PATH (a zoo name from `python -m zoo.hub list`, a bundle directory or archive)"
        )
    found = locate_bundle(str(ckpt), _registries(cfg), label="checkpoint")  # a directory (archives unpacked), or a name's entry
    if isinstance(found, Path):
        return str(read_config(found).get("task"))
    if not found.has_weights:
        raise ConfigError(
            f"checkpoint={ckpt} is architecture-only (no weights to {'fine-tune' if mode == 'finetune' else 'run'}); "
            "train it with mode=search or pick an entry with weights"
        )
    return found.task


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


def finetune_task(job: FinetuneJob, data_cfg: Any = None, **attributes: Any) -> Any:
    """The task on the fine-tuning data, set up (data read and checked). ``data_cfg``: default a
    resolved copy of ``cfg.data`` (a fine-tuner may adjust it first, as classification's does);
    ``attributes``: set on the task before its setup (translation's ``tokenizer_json``: the parent's vocabulary)."""
    task = make_task(job.cfg, data_cfg if data_cfg is not None else OmegaConf.create(OmegaConf.to_container(job.cfg.data, resolve=True)))
    for name, value in attributes.items():
        if not hasattr(task, name):
            raise AttributeError(f"task={task.name} has no attribute {name!r} to set before its setup")
        setattr(task, name, value)
    task.setup()
    return task


def bundle_config(
    job: FinetuneJob, args: dict[str, Any], labels: list[str] | None, data: dict[str, Any], metrics: dict[str, Any]
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


def adapted_model(
    job: FinetuneJob, args: dict[str, Any], device: torch.device, is_new: Callable[[str], bool], what: str, new_head: bool = False
) -> nn.Module:
    """``zoo.create_model(**args)``, built under ``cfg.seed``, with the parent's tensors fitted to it (:func:`adapt_state`)
    and moved to ``device``. The tensors ``is_new`` names (the class layer) are re-initialised where their shape differs,
    and always with ``new_head``; the parent must hold every other (one-line error naming the ``what``'s tensor it lacks)."""
    from zoo.hub.bundle import load_bundle
    from zoo.models import create_model

    parent, _ = load_bundle(job.bundle_dir)
    torch.manual_seed(int(job.cfg.seed))
    model = create_model(**args)
    state = adapt_state(parent.state_dict(), model, is_new)
    if new_head:
        state = {k: v for k, v in state.items() if not is_new(k)}
    missing = [k for k in model.state_dict() if k not in state and not is_new(k)]
    if missing:
        raise ConfigError(f"the checkpoint lacks tensor {missing[0]!r} of the {what}")
    model.load_state_dict(state, strict=False)
    return model.to(device)  # built on the CPU; evaluated and trained on the run's device


@contextlib.contextmanager
def frozen_body(model: nn.Module, is_head: Callable[[str], bool]) -> Iterator[None]:
    """Head-only training inside the block: body parameters (all but ``is_head`` names) stop learning and batch-norm
    statistics stop moving; afterwards every parameter learns and each batch-norm layer has its momentum and count back."""
    for n, p in model.named_parameters():
        p.requires_grad_(is_head(n))
    saved: dict[nn.modules.batchnorm._BatchNorm, tuple[float | None, torch.Tensor | None]] = {}
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved[m] = (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
            m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: the statistics stay put
    try:
        yield
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
        for m, (momentum, tracked) in saved.items():
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)


PhaseFit = Callable[[nn.Module, int, str, bool], float]
"""Trains one fine-tuning phase: (model, epochs, progress label, head only) -> the last epoch's mean loss."""


@dataclass
class Finetuned:
    """What :func:`train_head_then_all` did: test metrics before (empty: not measured) and after, the epochs
    (stretched, :func:`scaled_epochs`), of which the head alone trained ``freeze_epochs``, and the last epoch's loss."""

    before: dict[str, Any]
    after: dict[str, Any]
    epochs: int
    freeze_epochs: int
    train_loss: float


def train_head_then_all(
    job: FinetuneJob,
    task: SupervisedTask,
    model: nn.Module,
    is_head: Callable[[str], bool],
    test_before: bool = True,
    fit: PhaseFit | None = None,
    head: str = "head",
) -> Finetuned:
    """A supervised task's fine-tuning: the parent's test metrics (``test_before``; test key ``before``), then
    ``finetune.freeze_epochs`` epochs of the head alone (``is_head``; :func:`frozen_body`), then the rest of
    ``finetune.epochs`` training everything, both stretched to ``finetune.min_steps`` (:func:`scaled_epochs`), then the
    test metrics in eval mode (test key ``finetuned``). ``fit`` trains a phase; default the task's
    :meth:`~zoo.task.SupervisedTask.fit` on ``train``. ``head`` names the head in the first phase's progress label."""
    before = task.test(model, "before") if test_before else {}
    epochs, frozen = scaled_epochs(job.cfg.finetune, len(task.loader("train", True)))

    def task_fit(m: nn.Module, n: int, desc: str, head_only: bool) -> float:
        return task.fit(m, "train", n, desc)

    phase = fit or task_fit
    loss = float("nan")
    if frozen:
        with frozen_body(model, is_head):
            loss = phase(model, frozen, f"finetune ({head})", True)
    if epochs > frozen:
        loss = phase(model, epochs - frozen, "finetune", False)
    model.eval()
    return Finetuned(before, task.test(model, "finetuned"), epochs, frozen, loss)


def finetune_metrics(
    task: SupervisedTask, model: nn.Module, r: Finetuned, after: Mapping[str, str], before: Mapping[str, str], **facts: Any
) -> dict[str, Any]:
    """A fine-tuning's ``metrics.json``: the task, the ``after`` metrics (``metrics.json`` key -> key of the fine-tuned
    model's test metrics), ``params``, ``facts`` (e.g. ``head_replaced``), the epochs, the last epoch's loss, and the
    ``before`` metrics (the same for the parent) where they were measured."""
    return {
        "task": task.name,
        **{key: r.after[source] for key, source in after.items()},
        "params": task.count_parameters(model),
        **facts,
        "epochs": r.epochs,
        "freeze_epochs": r.freeze_epochs,
        "train_loss": r.train_loss,
        **({key: r.before[source] for key, source in before.items()} if r.before else {}),
    }


def _sha(path: Path) -> str:
    from zoo.hub.download import sha256_file

    return sha256_file(path)
