"""Fine-tuning a searched classifier (``python -m zoo mode=finetune checkpoint=... data=folder``).

The searched body keeps its weights; the classifier is replaced when the label set differs,
and the stem adapted when the number of input channels differs (a grayscale digits model
meeting RGB photos). The first ``finetune.freeze_epochs`` epochs train the head alone with
the body's weights and batch-norm statistics frozen (linear probing, then full fine-tuning:
Kumar et al., "Fine-Tuning can Distort Pretrained Features", ICLR 2022); accuracy is measured
on the task's held-out test split.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, adapt_state, bundle_config, finetune_task, finetuner, freeze_body, scaled_epochs


def _is_head(name: str) -> bool:
    return name.endswith(("classifier.weight", "classifier.bias"))


@finetuner("classification")
def finetune_classification(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    from tasks.classification.metrics import accuracy
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
    task = finetune_task(job, data_cfg)

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
    state = adapt_state(parent_model.state_dict(), model, _is_head)
    missing = [k for k in model.state_dict() if k not in state]
    if any(not _is_head(k) for k in missing):
        raise ConfigError(f"the checkpoint lacks tensor {next(k for k in missing if not _is_head(k))!r} of the body")
    model.load_state_dict(state, strict=False)
    model.to(task.device)  # built on the CPU; evaluated and trained on the run's device

    before = None
    if not head_replaced:
        before = accuracy(model, task.loader("test", False))
    epochs, frozen = scaled_epochs(f, len(task.loader("train", True)))
    if frozen:
        freeze_body(model, True, _is_head)
        task.fit(model, "train", frozen, "finetune (head)", lr=float(f.lr), drop_path_prob=0.0)
        freeze_body(model, False, _is_head)
    if epochs > frozen:
        task.fit(model, "train", epochs - frozen, "finetune", lr=float(f.lr))
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
