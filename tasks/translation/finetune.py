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

from torch import nn

from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, bundle_config, finetune_task, finetuner, train_head_then_all


def _is_head(name: str) -> bool:
    return name.startswith(("decoder.", "decoder_norm."))


@finetuner("translation")
def finetune_translation(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    import torch

    from zoo.hub.bundle import load_bundle

    cfg = job.cfg
    tokenizer = (job.parent.get("data") or {}).get("tokenizer")
    if tokenizer is None:
        raise ConfigError(f"checkpoint={job.checkpoint} has no tokenizer (config.json data.tokenizer); it cannot be fine-tuned")
    task = finetune_task(job, tokenizer_json=tokenizer)

    model, _ = load_bundle(job.bundle_dir)
    args = dict(job.parent["model"])
    torch.manual_seed(int(cfg.seed))
    model.train().to(task.device)
    r = train_head_then_all(job, task, model, _is_head, head="decoder")
    task.write_outputs(job.run_dir)

    metrics: dict[str, Any] = {
        "task": "translation",
        "test_bleu": r.after["bleu"],
        "test_chrf": r.after["chrf"],
        "test_bleu_greedy": r.after["bleu_greedy"],
        "test_bleu_before": r.before["bleu"],
        "test_chrf_before": r.before["chrf"],
        "score": r.after["bleu"],
        "params": task.count_parameters(model),
        "epochs": r.epochs,
        "freeze_epochs": r.freeze_epochs,
        "train_loss": r.train_loss,
        "bleu_signature": r.after["bleu_signature"],
        "samples": task.samples.get("finetuned", []),
    }
    keys = ("test_bleu", "test_chrf", "test_bleu_before", "test_chrf_before", "score", "params")
    config = bundle_config(job, args, None, task.describe_data(), {k: metrics[k] for k in keys})
    return model, config, metrics
