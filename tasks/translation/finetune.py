"""Fine-tuning a searched translator on the user's sentence pairs
(``python -m zoo task=translation mode=finetune checkpoint=... data=tsv data.root=FILE``).

The parent's vocabulary is kept (``config.json``'s ``data.tokenizer``), so every weight carries
over: a word of the new data that the vocabulary lacks is split into the sub-words and, at
worst, the characters it knows; a character it never saw becomes ``<unk>`` (and stays
untranslatable). The first ``finetune.freeze_epochs`` epochs train the decoder alone (the
encoder and the shared embedding frozen), then everything (Kumar et al., "Fine-Tuning can Distort
Pretrained Features", ICLR 2022), with the task's training recipe at ``trainer.lr``. BLEU and
chrF on the new data's test split are reported before and after.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf
from torch import nn

from zoo.build import make_task
from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, bundle_config, finetuner, freeze_body, scaled_epochs


def _is_head(name: str) -> bool:
    return name.startswith(("decoder.", "decoder_norm."))


@finetuner("translation")
def finetune_translation(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    import torch

    from zoo.hub.bundle import load_bundle

    cfg, f = job.cfg, job.cfg.finetune
    tokenizer = (job.parent.get("data") or {}).get("tokenizer")
    if tokenizer is None:
        raise ConfigError(f"checkpoint={job.checkpoint} has no tokenizer (config.json data.tokenizer); it cannot be fine-tuned")
    task = make_task(cfg, OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True)))
    task.tokenizer_json = tokenizer  # type: ignore[attr-defined]
    task.setup()

    model, _ = load_bundle(job.bundle_dir)
    args = dict(job.parent["model"])
    torch.manual_seed(int(cfg.seed))
    model.train().to(task.device)

    before = task.test(model, "before")  # type: ignore[attr-defined]
    epochs, frozen = scaled_epochs(f, len(task.loader("train", True)))  # type: ignore[attr-defined]
    loss = float("nan")
    if frozen:
        freeze_body(model, True, is_head=_is_head)
        loss = task.fit(model, "train", frozen, "finetune (decoder)")  # type: ignore[attr-defined]
        freeze_body(model, False, is_head=_is_head)
    if epochs > frozen:
        loss = task.fit(model, "train", epochs - frozen, "finetune")  # type: ignore[attr-defined]
    model.eval()
    after = task.test(model, "finetuned")  # type: ignore[attr-defined]
    task.write_outputs(job.run_dir)

    metrics: dict[str, Any] = {
        "task": "translation",
        "test_bleu": after["bleu"],
        "test_chrf": after["chrf"],
        "test_bleu_greedy": after["bleu_greedy"],
        "test_bleu_before": before["bleu"],
        "test_chrf_before": before["chrf"],
        "score": after["bleu"],
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": epochs,
        "freeze_epochs": frozen,
        "train_loss": loss,
        "bleu_signature": after["bleu_signature"],
        "samples": task.samples.get("finetuned", []),  # type: ignore[attr-defined]
    }
    keys = ("test_bleu", "test_chrf", "test_bleu_before", "test_chrf_before", "score", "params")
    config = bundle_config(job, args, None, task.describe_data(), {k: metrics[k] for k in keys})  # type: ignore[arg-type]
    return model, config, metrics
