"""Corpus BLEU and chrF of translations with sacreBLEU, and the signatures that make them comparable.

BLEU (Papineni et al., 2002) and chrF (Popović, 2015) are computed over the whole corpus by
sacreBLEU (Post, "A Call for Clarity in Reporting BLEU Scores", WMT 2018) from detokenised text, so
the scores do not depend on the model's own tokenizer. BLEU tokenises with ``13a`` (the WMT
convention for English and German and other space-separated languages), ``zh`` for Chinese and
single characters for Japanese and Thai. The signature (tokenizer, smoothing, version) goes into the
model card next to each score: two BLEU numbers are only comparable when their signatures match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
