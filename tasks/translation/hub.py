"""What the hub knows of translation bundles: source token ids in, next-token logits out; BLEU as the headline.

Also the architecture-only registry entries of the published seq2seq cells, the Transformer and the
Evolved Transformer, built at the papers' base size (``d_model`` 512, 6 encoder and 6 decoder layers,
a 32k shared vocabulary) from :data:`tasks.translation.space.TRANSFORMER` and :data:`EVOLVED_TRANSFORMER`;
``scripts/zoo_published_entries.py`` writes them into ``zoo/hub/registry.json``. ``search=fixed
search.arch=NAME`` retrains one and ``search=evolution search.seed_arch=transformer`` starts from one.
"""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts

PAPERS = {
    "transformer": "Vaswani et al., Attention Is All You Need, NeurIPS 2017",
    "evolved_transformer": "So, Liang & Le, The Evolved Transformer, ICML 2019",
}
# WMT'14 En-De newstest2014 BLEU at the base size, as So et al. report for both (their Table 3)
REPORTED_BLEU = {"transformer": 28.4, "evolved_transformer": 29.8}


@HUB_FACTS.register("translation")
class TranslationHub(HubFacts):
    name = "translation"

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        raise NotImplementedError(
            "a translator generates token by token; hand it to transformers instead (tasks.translation.integrations.transformers)"
        )

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config.get("data") or {}
        return {
            "languages": f"{data.get('src_lang', '?')} -> {data.get('tgt_lang', '?')}",
            "tokenizer": f"BPE, {data.get('vocab_size', '?')} tokens shared by both languages (config.json data.tokenizer), </s> appended",
            "max_len": data.get("max_len"),
            "outputs": "next-token logits (N, T, vocab); translate with generate() after tasks.translation.integrations.transformers.to_transformers",
        }

    def output_names(self) -> list[str]:
        return ["logits"]

    def card_results(self, config: dict[str, Any]) -> list[str]:
        """The run's sample test translations (the same-size Transformer's numbers are the core card's section)."""
        samples = (config.get("metrics") or {}).get("samples") or []
        if not samples:
            return []
        cell = lambda t: str(t).replace("|", "\\|")  # noqa: E731
        return [
            "Sample test translations (beam search; the first five the run recorded):",
            "",
            "| source | this model | reference |",
            "| --- | --- | --- |",
            *(f"| {cell(s['source'])} | {cell(s.get('beam', ''))} | {cell(s['reference'])} |" for s in samples[:5]),
            "",
        ]

    def headline(self, metrics: dict[str, Any]) -> str | None:
        if "test_bleu" in metrics:
            return f"BLEU {metrics['test_bleu']:.1f}"
        if "reported_wmt14_en_de_bleu" in metrics:
            return f"WMT'14 En-De BLEU {metrics['reported_wmt14_en_de_bleu']:.1f} (paper)"
        return None

    def card_usage(self, ref: str) -> list[str]:
        return [
            "Translate with transformers (beam search through `generate`):",
            "",
            "```python",
            "import zoo  # registers the model type with transformers' Auto classes",
            "from tasks.translation.integrations.transformers import save_pretrained",
            "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
            f'save_pretrained("{ref}", "hf-model")',
            'model, tok = AutoModelForSeq2SeqLM.from_pretrained("hf-model"), AutoTokenizer.from_pretrained("hf-model")',
            'batch = tok(["Das ist ein Beispiel."], return_tensors="pt", padding=True)',
            "print(tok.batch_decode(model.generate(**batch, num_beams=4), skip_special_tokens=True))",
            "```",
            "",
            "Fine-tune on your own sentence pairs (one `source<TAB>target` per line; the vocabulary is kept):",
            "",
            "```bash",
            f"python -m zoo task=translation mode=finetune checkpoint={ref} data=tsv data.root=pairs.tsv",
            "```",
            "",
        ]

    def published_entries(self) -> list[dict[str, Any]]:
        """Architecture-only registry entries (see :meth:`HubFacts.published_entries`)."""
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
