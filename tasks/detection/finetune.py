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

from zoo.finetune import FinetuneJob, adapted_model, bundle_config, finetune_metrics, finetune_task, finetuner, train_head_then_all

CLASS_LOGITS = ("head.cls_logits.weight", "head.cls_logits.bias")
AFTER = {"test_mAP": "mAP", "test_mAP50": "mAP50", "score": "mAP50"}  # metrics.json key -> test metric
BEFORE = {"test_mAP_before": "mAP", "test_mAP50_before": "mAP50"}


def _is_class_layer(name: str) -> bool:
    return name in CLASS_LOGITS


def _is_head(name: str) -> bool:
    return name.startswith("head.")


@finetuner("detection")
def finetune_detection(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    task = finetune_task(job)
    args = dict(job.parent["model"])
    head_replaced = int(args.get("num_classes", 0)) != len(task.classes)
    args["num_classes"] = len(task.classes)  # mean/std stay the parent's: the body learnt with them
    model = adapted_model(job, args, task.device, _is_class_layer, "detector")
    r = train_head_then_all(job, task, model, _is_head, test_before=not head_replaced)
    task.predictions.pop("before", None)  # draw the fine-tuned model only
    drawn = task.write_outputs(job.run_dir)

    metrics = finetune_metrics(task, model, r, AFTER, BEFORE, head_replaced=head_replaced)
    keys = (*AFTER, "params", *(BEFORE if r.before else ()))
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    metrics["drawn_predictions"] = len(drawn)
    return model, config, metrics
