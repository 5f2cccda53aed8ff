"""Translators from a :class:`Seq2SeqGenotype`: a stack of encoder cells and one of decoder cells.

:class:`Translator` (the bundle's model) embeds tokens into one vocabulary shared by both
languages (the output layer is the same matrix, as in the Transformer), adds sinusoidal
positions, runs ``layers`` encoder cells and ``layers`` decoder cells (each reading the two
cells before it) and returns next-token logits. ``forward(input_ids, decoder_input_ids)`` is
the training pass; without ``decoder_input_ids`` the source shifted right is decoded (BART's
convention), so the model takes one tensor where a single input is expected (latency, tests).

Incremental decoding: :meth:`Translator.decode` takes, per decoder layer, the states the cell
computed at earlier positions (its two inputs and its blocks, concatenated on the channel axis)
and returns those of the new positions, which the caller appends (the Hugging Face wrapper
keeps them in an ``EncoderDecoderCache``). Every op computes only the new positions from
these histories (:mod:`tasks.translation.ops`), so decoding with and without the cache agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tasks.translation.ops import Combiner, SeqContext, sinusoid
from tasks.translation.space import Block, Seq2SeqGenotype, loose_ends
from zoo.models import MODEL_BUILDERS, resolve_genotype
from zoo.space.ops import OPS

PAD, BOS, EOS, UNK = 0, 1, 2, 3


class SeqCell(nn.Module):
    """One cell: block ``i`` joins ``op1(state[in1])`` and ``op2(state[in2])``; the output is the sum of the loose ends.

    Dropout (``dropout``) acts on the outputs of parametric ops, never on identity branches (residual paths)."""

    def __init__(self, blocks: Sequence[Block], C: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = [tuple(b) for b in blocks]
        self.ops = nn.ModuleList(OPS.get(op)(C) for b in self.blocks for op in (b[0], b[2]))
        self.parametric = [OPS.get(op).parametric for b in self.blocks for op in (b[0], b[2])]
        self.combiners = nn.ModuleList(Combiner(b[4], C) for b in self.blocks)
        self.loose = loose_ends(self.blocks)
        self.drop = nn.Dropout(dropout)
        self.C = C

    @property
    def n_states(self) -> int:
        return len(self.blocks) + 2

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, ctx: SeqContext, past: torch.Tensor | None = None, keep: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``s0``, ``s1``: the inputs at the new positions (N, L', C); ``past``: (N, start, n_states * C)
        of the earlier positions, or ``None``. Returns the output (N, L', C) and, with ``keep``, the new
        positions' states (N, L', n_states * C) to append to ``past``."""
        start = 0 if past is None else past.shape[1]
        history = list(past.split(self.C, dim=-1)) if past is not None and start else None
        new = [s0, s1]
        full = [torch.cat([history[j], s], dim=1) if history else s for j, s in enumerate(new)]
        for i, (_, in1, _, in2, _) in enumerate(self.blocks):
            branches = []
            for k, src in ((2 * i, in1), (2 * i + 1, in2)):
                out = self.ops[k](full[src], ctx, start)
                branches.append(self.drop(out) if self.parametric[k] else out)
            node = self.combiners[i](*branches)
            new.append(node)
            full.append(torch.cat([history[i + 2], node], dim=1) if history else node)
        out = new[self.loose[0]]
        for j in self.loose[1:]:
            out = out + new[j]
        return out, torch.cat(new, dim=-1) if keep else None


class Translator(nn.Module):
    """Token ids in, next-token logits out: shared embedding, ``layers`` encoder and decoder cells of width ``d_model``."""

    def __init__(
        self,
        genotype: Seq2SeqGenotype,
        vocab_size: int,
        d_model: int = 64,
        layers: int = 2,
        dropout: float = 0.1,
        pad_token_id: int = PAD,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.vocab_size, self.d_model, self.layers, self.pad_token_id = int(vocab_size), int(d_model), int(layers), int(pad_token_id)
        self.embed = nn.Embedding(self.vocab_size, self.d_model, padding_idx=self.pad_token_id)
        nn.init.normal_(self.embed.weight, std=self.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[self.pad_token_id].zero_()
        self.encoder = nn.ModuleList(SeqCell(genotype.encoder, self.d_model, dropout) for _ in range(self.layers))
        self.decoder = nn.ModuleList(SeqCell(genotype.decoder, self.d_model, dropout) for _ in range(self.layers))
        self.encoder_norm = nn.LayerNorm(self.d_model)
        self.decoder_norm = nn.LayerNorm(self.d_model)
        self.drop = nn.Dropout(dropout)

    def _embed(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        pos = torch.arange(start, start + ids.shape[1], device=ids.device)
        return self.drop(self.embed(ids) * math.sqrt(self.d_model) + sinusoid(pos, self.d_model).to(self.embed.weight.dtype))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Source ids (N, S) -> encoder output (N, S, C); ``attention_mask`` (N, S) marks real tokens (default: not padding)."""
        mask = (input_ids != self.pad_token_id) if attention_mask is None else attention_mask.bool()
        ctx = SeqContext(causal=False, mask=mask)
        s0 = s1 = self._embed(input_ids)
        for cell in self.encoder:
            s0, s1 = s1, cell(s0, s1, ctx)[0]
        return self.encoder_norm(s1)

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        past: Sequence[torch.Tensor | None] | None = None,
        keep: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N, T', V) of the new decoder positions and, with ``keep``, each layer's states there
        (to append to ``past``; else an empty list).

        ``past[l]``: decoder layer ``l``'s states at the earlier positions (or ``None`` for a full pass)."""
        start = 0 if not past or past[0] is None else past[0].shape[1]
        ctx = SeqContext(causal=True, memory=memory, memory_mask=memory_mask.bool())
        s0 = s1 = self._embed(decoder_input_ids, start)
        rows = []
        for k, cell in enumerate(self.decoder):
            out, row = cell(s0, s1, ctx, None if not past else past[k], keep)
            if row is not None:
                rows.append(row)
            s0, s1 = s1, out
        return F.linear(self.decoder_norm(s1), self.embed.weight), rows

    def forward(
        self,
        input_ids: torch.Tensor,
        decoder_input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits (N, T, V); ``decoder_input_ids`` default: ``input_ids`` shifted right behind ``<s>``."""
        input_ids = input_ids.long()
        if decoder_input_ids is None:
            decoder_input_ids = shift_right(input_ids, BOS, self.pad_token_id)
        mask = (input_ids != self.pad_token_id) if attention_mask is None else attention_mask.bool()
        memory = self.encode(input_ids, mask)
        return self.decode(decoder_input_ids.long(), memory, mask)[0]


def shift_right(ids: torch.Tensor, start_id: int, pad_id: int) -> torch.Tensor:
    """``start_id`` then ``ids`` without their last position (``-100`` labels become padding)."""
    out = torch.full_like(ids, pad_id)
    out[:, 0] = start_id
    out[:, 1:] = ids[:, :-1].masked_fill(ids[:, :-1] == -100, pad_id)
    return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@MODEL_BUILDERS.register("translation")
def create_translator(
    arch: Any,
    vocab_size: int = 8000,
    d_model: int = 64,
    layers: int = 2,
    dropout: float = 0.1,
    pad_token_id: int = PAD,
    **_: Any,
) -> Translator:
    """``zoo.create_model`` for translators (other keys of a bundle's model arguments are ignored)."""
    genotype = resolve_genotype(arch)
    if not isinstance(genotype, Seq2SeqGenotype):
        raise ValueError(f"task=translation builds seq2seq genotypes (space=seq2seq), not {type(genotype).__name__}")
    return Translator(genotype, int(vocab_size), int(d_model), int(layers), float(dropout), int(pad_token_id))
