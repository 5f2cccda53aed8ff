"""Fine-tuning a searched checkpoint on new data (``python -m zoo mode=finetune checkpoint=...``).

The searched body keeps its weights; the head is replaced when the label set differs
(and the stem adapted when the number of input channels differs, as when a grayscale
digits model meets RGB photos). For the first ``finetune.freeze_epochs`` epochs only
the head trains, with the body's weights and batch-norm statistics frozen (linear
probing, then full fine-tuning: Kumar et al., "Fine-Tuning can Distort Pretrained
Features", ICLR 2022). The model is evaluated on the task's held-out test split and
written as a new bundle in the run directory.

Each task plugs in one function with ``@finetuner("task")``; the task plug-in (from
:data:`tasks.TASKS`, built by :func:`make_task`) provides the data, as in :mod:`zoo.pipeline`.
Classification lives here, detection in :mod:`zoo.finetune_detection`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zoo.config_values import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, ConfigError, Flag, check_values
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
FINETUNERS: dict[str, Finetuner] = {}
FINETUNE_SPECS = {"epochs": POSITIVE_INT, "freeze_epochs": NON_NEGATIVE_INT, "lr": POSITIVE, "match_input": Flag(), "min_steps": NON_NEGATIVE_INT}


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

    def deco(fn: Finetuner) -> Finetuner:
        FINETUNERS[task] = fn
        return fn

    return deco


def _registries(cfg: DictConfig) -> Any:
    hub = cfg.get("hub") or {}
    reg = hub.get("registry") if hasattr(hub, "get") else None
    return OmegaConf.to_container(reg) if OmegaConf.is_list(reg) else reg


def checkpoint_task(cfg: DictConfig) -> str:
    """The task of ``cfg.checkpoint`` without downloading it; one-line errors for a bad one."""
    from zoo.hub.bundle import read_config
    from zoo.hub.registry import get_entry

    ckpt = cfg.get("checkpoint")
    if not ckpt:
        raise ConfigError("mode=finetune needs checkpoint=NAME_OR_PATH (a zoo name from `python -m zoo.hub list`, a bundle directory or archive)")
    p = Path(str(ckpt)).expanduser()
    if p.is_dir():
        return str(read_config(p).get("task"))
    if p.is_file():
        return str(read_config(_unpacked(p)).get("task"))
    if "/" in str(ckpt):
        raise ConfigError(f"checkpoint={ckpt} does not exist (expected a bundle directory, a .tar/.zip bundle or a zoo name)")
    entry = get_entry(str(ckpt), _registries(cfg))
    if not entry.has_weights:
        raise ConfigError(f"checkpoint={ckpt} is architecture-only (no weights to fine-tune); train it with mode=search or pick an entry with weights")
    return entry.task


def _unpacked(archive: Path) -> Path:
    from zoo.hub.api import unpack_cached

    return unpack_cached(archive)


def check_finetune(cfg: DictConfig) -> None:
    """Everything checkable before data is loaded or weights fetched."""
    from zoo.pipeline import check_trainer

    f = cfg.get("finetune")
    if f is None:
        raise ConfigError("mode=finetune needs the finetune: config section (conf/finetune/default.yaml)")
    check_values(f, FINETUNE_SPECS, "finetune")
    if f.freeze_epochs > f.epochs:
        raise ConfigError(f"finetune.freeze_epochs={f.freeze_epochs} is invalid; allowed: 0 ... finetune.epochs ({f.epochs})")
    check_trainer(cfg.trainer)
    task = checkpoint_task(cfg)
    if task != cfg.task.name:
        raise ConfigError(f"checkpoint={cfg.checkpoint} is a {task} checkpoint but task={cfg.task.name}; pass task={task}")
    if task not in FINETUNERS:
        raise ConfigError(f"fine-tuning is not implemented for task {task!r} yet; allowed: {', '.join(sorted(FINETUNERS))}")
    make_task(cfg, cfg.data)  # the task plug-in's own checks (e.g. detection data for task=detection); no data loaded


def make_task(cfg: DictConfig, data_cfg: Any) -> Any:
    """The ``cfg.task.name`` plug-in on ``data_cfg`` with the configured space, not yet set up."""
    from tasks import TASKS
    from zoo.space.base import SPACES

    space_cfg = OmegaConf.to_container(cfg.space, resolve=True)
    space = SPACES.get(space_cfg.pop("name"))(**space_cfg)  # type: ignore[union-attr]
    task_cls = TASKS.get(cfg.task.name)
    task_cls.check_config(cfg.task, data_cfg)
    return task_cls(cfg.task, data_cfg, cfg.trainer, space, seed=int(cfg.seed), progress=bool(cfg.progress))


def bundle_config(job: FinetuneJob, args: dict[str, Any], labels: list[str], data: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
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
    model, config, metrics = FINETUNERS[cfg.task.name](job)
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


# ---- classification


def _is_head(name: str) -> bool:
    return name.endswith(("classifier.weight", "classifier.bias"))


def adapt_state(state: dict[str, torch.Tensor], model: nn.Module, is_head: Callable[[str], bool] = _is_head) -> dict[str, torch.Tensor]:
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


def _freeze_body(model: nn.Module, frozen: bool, is_head: Callable[[str], bool] = _is_head) -> None:
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


@finetuner("classification")
def finetune_classification(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    from zoo.estimate.train import accuracy, train_epochs
    from zoo.hub.bundle import load_bundle
    from zoo.models import create_model
    from zoo.space.network import count_parameters

    cfg, parent, f = job.cfg, job.parent, job.cfg.finetune
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    pre = parent.get("preprocessing") or {}
    if bool(f.get("match_input", True)) and data_cfg.get("name") == "folder" and pre.get("input_size"):
        chans, size = int(pre["input_size"][0]), int(pre["input_size"][-1])
        data_cfg.grayscale = chans == 1
        data_cfg.image_size = size
    task = make_task(cfg, data_cfg)
    task.setup()

    parent_model, _ = load_bundle(job.bundle_dir)
    args = dict(parent["model"])
    head_replaced = int(args.get("num_classes", 0)) != len(task.classes)
    chans_adapted = int(args.get("in_chans", 3)) != task.in_chans
    args.update(num_classes=len(task.classes), in_chans=task.in_chans)
    for key in ("mean", "std"):
        if chans_adapted and args.get(key) is not None:
            v = args[key]
            args[key] = [sum(v) / len(v)] * task.in_chans
    torch.manual_seed(int(cfg.seed))
    model = create_model(**args)
    state = adapt_state(parent_model.state_dict(), model)
    missing = [k for k in model.state_dict() if k not in state]
    if any(not _is_head(k) for k in missing):
        raise ConfigError(f"the checkpoint lacks tensor {next(k for k in missing if not _is_head(k))!r} of the body")
    model.load_state_dict(state, strict=False)

    before = None
    if not head_replaced:
        before = accuracy(model, task.loader("test", False))
    t = cfg.trainer
    common = dict(lr=float(f.lr), weight_decay=float(t.weight_decay), grad_clip=float(t.grad_clip), aux_weight=float(t.aux_weight), progress=bool(cfg.progress))
    epochs, frozen = scaled_epochs(f, len(task.loader("train", True)))
    if frozen:
        _freeze_body(model, True)
        train_epochs(model, task.loader("train", True), epochs=frozen, drop_path_prob=0.0, desc="finetune (head)", **common)  # type: ignore[arg-type]
        _freeze_body(model, False)
    if epochs > frozen:
        train_epochs(model, task.loader("train", True), epochs=epochs - frozen, drop_path_prob=float(t.drop_path_prob), desc="finetune", **common)  # type: ignore[arg-type]
    model.eval()
    acc = accuracy(model, task.loader("test", False))
    metrics: dict[str, Any] = {
        "task": "classification",
        "test_accuracy": acc,
        "score": acc,
        "chance_accuracy": 1.0 / len(task.classes),
        "params": count_parameters(model),
        "head_replaced": head_replaced,
        "in_chans_adapted": chans_adapted,
        "epochs": epochs,
        "freeze_epochs": frozen,
    }
    if before is not None:
        metrics["test_accuracy_before"] = before
    keys = ("test_accuracy", "score", "params") + (("test_accuracy_before",) if before is not None else ())
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    return model, config, metrics


def _sha(path: Path) -> str:
    from zoo.hub.download import sha256_file

    return sha256_file(path)


from zoo import finetune_detection  # noqa: E402,F401  (registers @finetuner("detection"); needs the names above)
