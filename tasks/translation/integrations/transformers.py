"""transformers hand-off: a searched translator as a Hugging Face seq2seq model that generates.

:class:`ZooTranslationConfig` (``model_type`` ``zoo-translation``) and
:class:`ZooForTranslation` (``PreTrainedModel`` + ``GenerationMixin``) wrap the bundle's
:class:`tasks.translation.model.Translator` unchanged (its parameters under ``model.``), so
``save_pretrained`` / ``AutoModelForSeq2SeqLM.from_pretrained`` / ``generate`` work as for any
seq2seq model of the library once :func:`register_auto` has run (``import zoo`` arranges it,
see :mod:`tasks.translation.integrations`).

The key/value cache: ``generate`` hands the model an ``EncoderDecoderCache`` and then feeds one
new token per step. Each decoder layer keeps, in the cache's self-attention part, the states
its cell computed at earlier positions (the cell's two inputs and every block, concatenated on
the channel axis, as the layer's "keys"; transformers concatenates them along the sequence and
reorders them for beam search). The new position is computed from them alone
(:meth:`Translator.decode`), so output with and without the cache is the same. Attention to the
encoder recomputes its keys from ``encoder_outputs`` each step (the cross-attention part stays empty).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    GenerationConfig,
    GenerationMixin,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from tasks.translation.model import BOS, EOS, PAD, Translator, create_translator, shift_right

MODEL_TYPE = "zoo-translation"


class ZooTranslationConfig(PreTrainedConfig):
    """The translator's model arguments (``arch``: the seq2seq genotype's JSON) and the special token ids."""

    model_type = MODEL_TYPE

    arch: dict | None = None
    vocab_size: int = 8000
    d_model: int = 64
    layers: int = 2
    decoder_layers: int = 2  # what transformers reads to size the default cache (= layers)
    num_hidden_layers: int = 2
    dropout: float = 0.1
    pad_token_id: int | None = PAD
    bos_token_id: int | None = BOS
    eos_token_id: int | None = EOS
    decoder_start_token_id: int | None = BOS
    is_encoder_decoder: bool | None = True
    use_cache: bool = True
    tie_word_embeddings: bool = False  # the output layer reads the embedding matrix itself: one tensor, nothing to tie

    def __post_init__(self, **kwargs: Any) -> None:
        self.decoder_layers = self.num_hidden_layers = self.layers  # the cache's layer count is the translator's
        super().__post_init__(**kwargs)


class _Encoder(nn.Module):
    """What ``generate`` calls once per batch: source ids -> ``BaseModelOutput`` (not a registered submodule:
    the translator's parameters keep one name)."""

    main_input_name = "input_ids"

    def __init__(self, translator: Translator) -> None:
        super().__init__()
        self.translator = translator

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=self.translator.encode(input_ids, attention_mask))


class ZooForTranslation(PreTrainedModel, GenerationMixin):
    config_class = ZooTranslationConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_cache_class = True

    def __init__(self, config: ZooTranslationConfig) -> None:
        super().__init__(config)
        self.model = create_translator(config.arch, config.vocab_size, config.d_model, config.layers, config.dropout, config.pad_token_id)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """The translator initialises itself (and ``from_pretrained`` loads every tensor): nothing to do here."""

    def get_encoder(self) -> nn.Module:
        return _Encoder(self.model)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        cache: EncoderDecoderCache | None = None,
        use_cache: bool | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> Seq2SeqLMOutput:
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("ZooForTranslation needs input_ids or encoder_outputs")
            memory = self.model.encode(input_ids, attention_mask)
        else:
            memory = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs.last_hidden_state
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id) if input_ids is not None else memory.new_ones(memory.shape[:2])
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("ZooForTranslation needs decoder_input_ids or labels")
            decoder_input_ids = shift_right(labels, self.config.decoder_start_token_id, self.config.pad_token_id)
        use_cache = (self.config.use_cache if use_cache is None else use_cache) and labels is None  # training keeps no cache
        past = None
        if use_cache:
            if cache is None:
                cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            own = cache.self_attention_cache
            if own.get_seq_length() > 0:
                past = [own.layers[k].keys[:, 0] for k in range(self.config.layers)]
        logits, rows = self.model.decode(decoder_input_ids, memory, attention_mask, past, keep=bool(use_cache))
        if use_cache:
            for k, row in enumerate(rows):
                own.update(row[:, None], row[:, None, :, :0], k)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
        return Seq2SeqLMOutput(loss=loss, logits=logits, cache=cache if use_cache else None, encoder_last_hidden_state=memory)


def register_auto() -> None:
    """Registers the config and model with ``AutoConfig`` / ``AutoModelForSeq2SeqLM`` (per process; repeat calls are no-ops)."""
    AutoConfig.register(MODEL_TYPE, ZooTranslationConfig, exist_ok=True)
    AutoModelForSeq2SeqLM.register(ZooTranslationConfig, ZooForTranslation, exist_ok=True)


def generation_config(max_new_tokens: int = 64, num_beams: int = 4) -> GenerationConfig:
    return GenerationConfig(
        decoder_start_token_id=BOS,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        use_cache=True,
    )


def wrap(translator: Translator, max_new_tokens: int = 64) -> ZooForTranslation:
    """A transformers model around ``translator`` (sharing its parameters), in eval mode on its device."""
    register_auto()
    config = ZooTranslationConfig(
        arch=translator.genotype.to_json(),
        vocab_size=translator.vocab_size,
        d_model=translator.d_model,
        layers=translator.layers,
        dropout=float(translator.drop.p),
        pad_token_id=translator.pad_token_id,
    )
    with torch.device("meta"):
        hf = ZooForTranslation(config)
    hf.model = translator
    hf.generation_config = generation_config(max_new_tokens)
    return hf.eval()


def tokenizer_from_json(data: dict[str, Any] | str) -> PreTrainedTokenizerFast:
    """The bundle's tokenizer (``config.json``'s ``data.tokenizer``, the ``tokenizers`` JSON) as a transformers tokenizer."""
    from tokenizers import Tokenizer

    text = data if isinstance(data, str) else json.dumps(data)
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(text), pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def to_transformers(ref: str | Path) -> tuple[ZooForTranslation, PreTrainedTokenizerFast]:
    """The transformers model and tokenizer of a translation bundle (a zoo entry, bundle directory or archive)."""
    from zoo.hub.api import resolve_bundle
    from zoo.hub.bundle import load_bundle, read_config

    directory, _ = resolve_bundle(str(ref), None, progress=False)
    config = read_config(directory)
    if config.get("task") != "translation":
        raise ValueError(f"{ref} is a {config.get('task')} bundle; the transformers hand-off takes translation bundles")
    translator, _ = load_bundle(directory)
    tok = (config.get("data") or {}).get("tokenizer")
    if tok is None:
        raise ValueError(f"{ref} has no tokenizer (config.json data.tokenizer)")
    return wrap(translator), tokenizer_from_json(tok)


def save_pretrained(ref: str | Path, out: str | Path) -> Path:
    """Writes ``out/`` so that ``AutoModelForSeq2SeqLM.from_pretrained(out)`` and ``AutoTokenizer.from_pretrained(out)`` load it."""
    model, tok = to_transformers(ref)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)


register_auto()  # importing this module (e.g. directly, before zoo's library hook could) registers it too

__all__ = ["ZooTranslationConfig", "ZooForTranslation", "register_auto", "wrap", "to_transformers", "save_pretrained"]
