"""Fine-tuning a searched detector (``python -m zoo task=detection mode=finetune checkpoint=...``).

The searched body (backbone + NAS-FPN neck) and the FCOS head's towers, box and
centerness branches keep the parent's weights; the class-logit layer is re-initialised
when the new data has another number of classes. The first ``finetune.freeze_epochs``
epochs train the head alone (body weights and batch-norm statistics frozen), the rest
train everything (Kumar et al., "Fine-Tuning can Distort Pretrained Features", ICLR 2022).
Training is the detection task's own loop (AdamW at ``trainer.lr`` with warm-up and cosine
decay per phase; ``finetune.lr`` is the classification SGD rate); the result is scored with
COCO mAP / mAP@0.5 on the task's held-out test images, whose predictions are drawn to PNG.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, adapt_state, bundle_config, finetune_task, finetuner, freeze_body, scaled_epochs

CLASS_LOGITS = ("head.cls_logits.weight", "head.cls_logits.bias")


def _is_class_layer(name: str) -> bool:
    return name in CLASS_LOGITS


def _is_head(name: str) -> bool:
    return name.startswith("head.")


@finetuner("detection")
def finetune_detection(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    import torch

    from zoo.hub.bundle import load_bundle
    from zoo.models import create_model

    cfg, f = job.cfg, job.cfg.finetune
    task = finetune_task(job)

    parent_model, _ = load_bundle(job.bundle_dir)
    args = dict(job.parent["model"])
    head_replaced = int(args.get("num_classes", 0)) != len(task.classes)
    args["num_classes"] = len(task.classes)  # mean/std stay the parent's: the body learnt with them
    torch.manual_seed(int(cfg.seed))
    model = create_model(**args)
    state = adapt_state(parent_model.state_dict(), model, is_head=_is_class_layer)
    missing = [k for k in model.state_dict() if k not in state and not _is_class_layer(k)]
    if missing:
        raise ConfigError(f"the checkpoint lacks tensor {missing[0]!r} of the detector")
    model.load_state_dict(state, strict=False)
    model.to(task.device)  # built on the CPU; evaluated and trained on the run's device

    before = task.test(model, "before") if not head_replaced else None
    epochs, frozen = scaled_epochs(f, len(task.loader("train", True)))
    loss = float("nan")
    if frozen:
        freeze_body(model, True, is_head=_is_head)
        loss = task.fit(model, "train", frozen, "finetune (head)")
        freeze_body(model, False, is_head=_is_head)
    if epochs > frozen:
        loss = task.fit(model, "train", epochs - frozen, "finetune")
    model.eval()
    task.predictions.clear()  # draw the fine-tuned model only
    after = task.test(model, "finetuned")
    drawn = task.write_outputs(job.run_dir)

    metrics: dict[str, Any] = {
        "task": "detection",
        "test_mAP": after["mAP"],
        "test_mAP50": after["mAP50"],
        "score": after[task.metric],
        "params": sum(p.numel() for p in model.parameters()),
        "head_replaced": head_replaced,
        "epochs": epochs,
        "freeze_epochs": frozen,
        "train_loss": loss,
    }
    if before is not None:
        metrics["test_mAP_before"], metrics["test_mAP50_before"] = before["mAP"], before["mAP50"]
    keys = ("test_mAP", "test_mAP50", "score", "params") + (("test_mAP_before", "test_mAP50_before") if before is not None else ())
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    metrics["drawn_predictions"] = len(drawn)
    return model, config, metrics
