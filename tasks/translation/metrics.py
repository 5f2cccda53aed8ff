"""The training loss (token cross-entropy), the candidates' score (per-token likelihood), and corpus BLEU
and chrF of translations with sacreBLEU with the signatures that make them comparable.

BLEU (Papineni et al., 2002) and chrF (Popović, 2015) are computed over the whole corpus by
sacreBLEU (Post, "A Call for Clarity in Reporting BLEU Scores", WMT 2018) from detokenised text, so
the scores do not depend on the model's own tokenizer. BLEU tokenises with ``13a`` (the WMT
convention for English and German and other space-separated languages), ``zh`` for Chinese and
single characters for Japanese and Thai. The signature (tokenizer, smoothing, version) goes into the
model card next to each score: two BLEU numbers are only comparable when their signatures match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.device import model_device

# sacreBLEU's BLEU tokenizer per target language where 13a would not split words
_BLEU_TOKENIZE = {"zh": "zh", "ja": "char", "th": "char"}


def bleu_tokenize(tgt_lang: str) -> str:
    """The sacreBLEU BLEU tokenizer for text in ``tgt_lang`` (an ISO 639-1 code such as ``en``)."""
    return _BLEU_TOKENIZE.get(tgt_lang.lower().split("-")[0].split("_")[0], "13a")


def translation_scores(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str = "en") -> dict[str, Any]:
    """Corpus BLEU and chrF (0..100, higher is better) of ``hyps`` against one reference each, with their sacreBLEU signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    hyps, refs = [str(h) for h in hyps], [str(r) for r in refs]
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references; each hypothesis needs one reference")
    if not hyps:
        raise ValueError("no hypotheses to score")
    bleu, chrf = BLEU(tokenize=bleu_tokenize(tgt_lang)), CHRF()
    # sacreBLEU takes a list of reference streams (one per reference set), each aligned with hyps
    return {
        "bleu": float(bleu.corpus_score(hyps, [refs]).score),
        "chrf": float(chrf.corpus_score(hyps, [refs]).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


# ---------------------------------------------------------------- loss and likelihood
def token_loss(model: nn.Module, batch: Any, smoothing: float = 0.0) -> torch.Tensor:
    src, dec_in, labels = batch
    logits = model(src, dec_in)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, label_smoothing=smoothing)


@torch.no_grad()
def likelihood(model: nn.Module, loader: Any) -> dict[str, float]:
    """Per-token cross-entropy (no smoothing), its ``exp(-ce)`` and token accuracy over ``loader``."""
    was = model.training
    model.eval()
    device = model_device(model)
    total, tokens, correct = 0.0, 0, 0
    for src, dec_in, labels in loader:
        src, dec_in, labels = src.to(device), dec_in.to(device), labels.to(device)
        logits = model(src, dec_in).float()
        keep = labels != -100
        total += float(F.cross_entropy(logits[keep], labels[keep], reduction="sum"))
        correct += int((logits.argmax(-1) == labels)[keep].sum())
        tokens += int(keep.sum())
    model.train(was)
    ce = total / max(tokens, 1)
    return {"cross_entropy": ce, "likelihood": math.exp(-ce), "token_accuracy": correct / max(tokens, 1)}
