"""Fine-tuning a searched segmenter (``python -m zoo task=segmentation mode=finetune checkpoint=... data=masks data.root=DIR``).

The searched body (stem, path cells, ASPP and decoder) keeps the parent's weights; the
classifier (``decoder.classifier``) is re-initialised when the new data's classes differ from
the parent's (in number or in names), and the stem adapted when it has another number of image
channels (a grayscale nuclei model meeting RGB photos: the first convolution's weights summed
over its input and spread evenly over the new channels, the normalisation averaged). The first
``finetune.freeze_epochs`` epochs train ASPP and decoder alone (stem and cells frozen; every
batch-norm layer keeps its statistics, as :func:`zoo.finetune.freeze_body` does), then everything
(Kumar et al., "Fine-Tuning can Distort Pretrained Features", ICLR 2022). Training is the
task's own loop (AdamW at ``trainer.lr``); the result is scored with mIoU on the task's
held-out test images, whose predictions are drawn to PNG.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, adapt_state, bundle_config, finetune_task, finetuner, freeze_body, scaled_epochs

CLASS_LAYER = ("decoder.classifier.weight", "decoder.classifier.bias")


def _is_class_layer(name: str) -> bool:
    return name in CLASS_LAYER


def _is_head(name: str) -> bool:
    return name.startswith(("aspp.", "decoder."))


@finetuner("segmentation")
def finetune_segmentation(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    import torch

    from zoo.hub.bundle import load_bundle
    from zoo.models import create_model

    cfg, f = job.cfg, job.cfg.finetune
    task = finetune_task(job)

    parent_model, _ = load_bundle(job.bundle_dir)
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
    torch.manual_seed(int(cfg.seed))
    model = create_model(**args)
    state = adapt_state(parent_model.state_dict(), model, is_head=_is_class_layer)
    if head_replaced:
        state = {k: v for k, v in state.items() if not _is_class_layer(k)}
    missing = [k for k in model.state_dict() if k not in state and not _is_class_layer(k)]
    if missing:
        raise ConfigError(f"the checkpoint lacks tensor {missing[0]!r} of the segmenter")
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
        "task": "segmentation",
        "test_mIoU": after["mIoU"],
        "test_pixel_accuracy": after["pixel_accuracy"],
        "test_per_class_IoU": after["per_class_IoU"],
        "score": after[task.metric],
        "params": sum(p.numel() for p in model.parameters()),
        "head_replaced": head_replaced,
        "epochs": epochs,
        "freeze_epochs": frozen,
        "train_loss": loss,
    }
    if before is not None:
        metrics["test_mIoU_before"] = before["mIoU"]
    keys = ("test_mIoU", "test_pixel_accuracy", "score", "params") + (("test_mIoU_before",) if before is not None else ())
    config = bundle_config(job, args, task.classes, task.describe_data(), {k: metrics[k] for k in keys})
    metrics["drawn_predictions"] = len(drawn)
    return model, config, metrics
