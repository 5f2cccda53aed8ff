"""The registry entries of the published seq2seq cells (architecture only): the Transformer and the Evolved Transformer.

``scripts/zoo_published_entries.py`` writes them into ``zoo/hub/registry.json``. They are built at
the papers' base size (``d_model`` 512, 6 encoder and 6 decoder layers, a 32k shared vocabulary)
from :data:`tasks.translation.space.TRANSFORMER` and :data:`EVOLVED_TRANSFORMER`; ``search=fixed
search.arch=NAME`` retrains one and ``search=evolution search.seed_arch=transformer`` starts from one.
"""

from __future__ import annotations

from typing import Any

PAPERS = {
    "transformer": "Vaswani et al., Attention Is All You Need, NeurIPS 2017",
    "evolved_transformer": "So, Liang & Le, The Evolved Transformer, ICML 2019",
}
# WMT'14 En-De newstest2014 BLEU at the base size, as So et al. report for both (their Table 3)
REPORTED_BLEU = {"transformer": 28.4, "evolved_transformer": 29.8}


def published_entries() -> list[dict[str, Any]]:
    from tasks.translation.space import EVOLVED_TRANSFORMER, TRANSFORMER
    from zoo.models import create_model

    out = []
    for name, genotype in (("transformer", TRANSFORMER), ("evolved_transformer", EVOLVED_TRANSFORMER)):
        model_args = {"arch": genotype.to_json(), "vocab_size": 32000, "d_model": 512, "layers": 6, "dropout": 0.1}
        params = sum(p.numel() for p in create_model(task="translation", **model_args).parameters())
        out.append(
            {
                "name": name,
                "task": "translation",
                "dataset": "wmt14 en-de (as published; no weights here)",
                "description": f"architecture only: {PAPERS[name]}",
                "strategy": "hand-designed" if name == "transformer" else "evolution (seeded with the Transformer)",
                "space": "seq2seq",
                "metrics": {"reported_wmt14_en_de_bleu": REPORTED_BLEU[name]},
                "params": params,
                "license": "Apache-2.0",
                "model": model_args,
                "paper": PAPERS[name],
                "note": "cells in zoo's seq2seq space (5 encoder and 7 decoder blocks, every op at the model's width); the paper's "
                "branches change width and its embeddings differ, so zoo's parameter count differs from the paper's",
                "reproduce": f"python -c \"import zoo; print(zoo.create_model('{name}'))\"",
                "files": [],
            }
        )
    return out
