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

from omegaconf import OmegaConf
from torch import nn

from zoo.finetune import FinetuneJob, adapted_model, bundle_config, finetune_task, finetuner, train_head_then_all


def _is_head(name: str) -> bool:
    return name.endswith(("classifier.weight", "classifier.bias"))


@finetuner("classification")
def finetune_classification(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    cfg, parent, f = job.cfg, job.parent, job.cfg.finetune
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    pre = parent.get("preprocessing") or {}
    if bool(f.get("match_input", True)) and data_cfg.get("name") == "folder" and pre.get("input_size"):
        chans, size = int(pre["input_size"][0]), int(pre["input_size"][-1])
        data_cfg.grayscale = chans == 1
        data_cfg.image_size = size
    task = finetune_task(job, data_cfg)

    args = dict(parent["model"])
    head_replaced = int(args.get("num_classes", 0)) != len(task.classes)
    chans_adapted = int(args.get("in_chans", 3)) != task.in_chans
    args.update(num_classes=len(task.classes), in_chans=task.in_chans)
    for key in ("mean", "std"):
        if chans_adapted and args.get(key) is not None:
            v = args[key]
            args[key] = [sum(v) / len(v)] * task.in_chans
    model = adapted_model(job, args, task.device, _is_head, "body")

    def fit(m: nn.Module, epochs: int, desc: str, head_only: bool) -> float:
        return task.fit(m, "train", epochs, desc, lr=float(f.lr), drop_path_prob=0.0 if head_only else None)

    r = train_head_then_all(job, task, model, _is_head, test_before=not head_replaced, fit=fit)
    acc = r.after["accuracy"]
    metrics: dict[str, Any] = {
        "task": "classification",
        "test_accuracy": acc,
        "score": acc,
        "chance_accuracy": 1.0 / len(task.classes),
        "params": task.count_parameters(model),
        "head_replaced": head_replaced,
        "in_chans_adapted": chans_adapted,
        "epochs": r.epochs,
        "freeze_epochs": r.freeze_epochs,
    }
    if r.before:
        metrics["test_accuracy_before"] = r.before["accuracy"]
    keys = ("test_accuracy", "score", "params") + (("test_accuracy_before",) if r.before else ())
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    return model, config, metrics
