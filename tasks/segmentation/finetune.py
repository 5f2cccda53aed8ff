"""Fine-tuning a searched segmenter (``python -m zoo task=segmentation mode=finetune checkpoint=... data=masks data.root=DIR``).

The searched body (stem, path cells, ASPP and decoder) keeps the parent's weights; the
classifier (``decoder.classifier``) is re-initialised when the new data's classes differ from
the parent's (in number or in names), and the stem adapted when it has another number of image
channels (a grayscale nuclei model meeting RGB photos: the first convolution's weights summed
over its input and spread evenly over the new channels, the normalisation averaged). The first
``finetune.freeze_epochs`` epochs train ASPP and decoder alone (stem and cells frozen; every
batch-norm layer keeps its statistics, as :func:`zoo.finetune.frozen_body` does), then everything
(Kumar et al., "Fine-Tuning can Distort Pretrained Features", ICLR 2022). Training is the
task's own loop (AdamW at ``trainer.lr``); the result is scored with mIoU on the task's
held-out test images, whose predictions are drawn to PNG.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.finetune import FinetuneJob, adapted_model, bundle_config, finetune_metrics, finetune_task, finetuner, train_head_then_all

CLASS_LAYER = ("decoder.classifier.weight", "decoder.classifier.bias")
# metrics.json key -> test metric (the bundle's config.json records them without the per-class IoU)
AFTER = {"test_mIoU": "mIoU", "test_pixel_accuracy": "pixel_accuracy", "test_per_class_IoU": "per_class_IoU", "score": "mIoU"}
BEFORE = {"test_mIoU_before": "mIoU"}


def _is_class_layer(name: str) -> bool:
    return name in CLASS_LAYER


def _is_head(name: str) -> bool:
    return name.startswith(("aspp.", "decoder."))


@finetuner("segmentation")
def finetune_segmentation(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    task = finetune_task(job)
    args = dict(job.parent["model"])
    # a new classifier whenever the label set differs, in count or in names (same count, other classes: new rows)
    head_replaced = int(args.get("num_classes", 0)) != len(task.classes) or list(job.parent.get("labels") or []) != list(task.classes)
    args["num_classes"] = len(task.classes)
    chans = int(task.data.in_chans)
    if int(args.get("in_chans", chans)) != chans:
        # the body learnt with the parent's normalisation: averaged over its channels, repeated for the new ones
        for key in ("mean", "std"):
            if args.get(key) is not None:
                args[key] = [float(sum(args[key]) / len(args[key]))] * chans
        args["in_chans"] = chans
    model = adapted_model(job, args, task.device, _is_class_layer, "segmenter", new_head=head_replaced)
    r = train_head_then_all(job, task, model, _is_head, test_before=not head_replaced)
    task.predictions.pop("before", None)  # draw the fine-tuned model only
    drawn = task.write_outputs(job.run_dir)

    metrics = finetune_metrics(task, model, r, AFTER, BEFORE, head_replaced=head_replaced)
    keys = (*(k for k in AFTER if k != "test_per_class_IoU"), "params", *(BEFORE if r.before else ()))
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    metrics["drawn_predictions"] = len(drawn)
    return model, config, metrics
