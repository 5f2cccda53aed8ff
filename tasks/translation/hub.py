"""What the hub knows of translation bundles: source token ids in, next-token logits out; BLEU as the headline."""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import HUB_FACTS, HubFacts


@HUB_FACTS.register("translation")
class TranslationHub(HubFacts):
    name = "translation"

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        raise NotImplementedError(
            "a translator generates token by token; hand it to transformers instead (tasks.translation.integrations.hf)"
        )

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        data = config.get("data") or {}
        return {
            "languages": f"{data.get('src_lang', '?')} -> {data.get('tgt_lang', '?')}",
            "tokenizer": f"BPE, {data.get('vocab_size', '?')} tokens shared by both languages (config.json data.tokenizer), </s> appended",
            "max_len": data.get("max_len"),
            "outputs": "next-token logits (N, T, vocab); translate with generate() after tasks.translation.integrations.hf.to_transformers",
        }

    def output_names(self) -> list[str]:
        return ["logits"]

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
            "from tasks.translation.integrations.hf import save_pretrained",
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
