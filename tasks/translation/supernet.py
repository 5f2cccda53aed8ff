"""The one-shot translator (``search=darts``): every decision of the seq2seq space relaxed by its own softmax.

DARTS (Liu et al., ICLR 2019) relaxes a cell by mixing, on every edge, all ops with softmax
weights. A block of the seq2seq space (:mod:`tasks.translation.space`) makes five decisions,
so here each is relaxed on its own: each branch reads a softmax-weighted sum of the states
it may read (its input), puts it through a softmax-weighted mixture of all ops (its op), and the
block joins the two branches by a softmax-weighted mixture of the combiners. The network
derived at the end takes the argmax of every softmax (``zero`` excluded from the ops, as DARTS
excludes ``none``), which is a genotype of the space. Each branch evaluates every op once
(not once per input, as edge-wise DARTS would), which keeps the supernet trainable on a CPU.

A super cell's output is the mean of its blocks (every block may become a loose end of the derived
cell, whose output is the sum of its loose ends), as DARTS concatenates every node.

Every mixture stays causal in the decoder: inputs are mixed position by position, and every
op and combiner is causal (:mod:`tasks.translation.ops`). A decoder whose derived branches
never attend to the encoder could not translate; then the branch with the largest weight on
an attention-to-encoder op takes that op (the derived genotype says which, in the log).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tasks.translation.model import BOS, PAD, shift_right
from tasks.translation.ops import Combiner, SeqContext, sinusoid
from tasks.translation.space import Seq2SeqGenotype, Seq2SeqSpace
from zoo.space.ops import OPS


class MixedBranch(nn.Module):
    """All ops of a branch on the same (mixed) input, weighted."""

    def __init__(self, C: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(OPS.get(op)(C) for op in ops)

    def forward(self, x: torch.Tensor, ctx: SeqContext, w: torch.Tensor) -> torch.Tensor:
        return sum(wk * op(x, ctx) for wk, op in zip(w, self.ops))  # type: ignore[return-value]


class SuperCell(nn.Module):
    def __init__(self, steps: int, C: int, ops: Sequence[str], combiners: Sequence[str]) -> None:
        super().__init__()
        self.steps = steps
        self.branches = nn.ModuleList(MixedBranch(C, ops) for _ in range(2 * steps))
        self.combiners = nn.ModuleList(nn.ModuleList(Combiner(c, C) for c in combiners) for _ in range(steps))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, ctx: SeqContext, w: dict[str, list[torch.Tensor]]) -> torch.Tensor:
        states = [s0, s1]
        for i in range(self.steps):
            outs = []
            for k in (2 * i, 2 * i + 1):
                x = sum(wj * s for wj, s in zip(w["input"][k], states))
                outs.append(self.branches[k](x, ctx, w["op"][k]))
            states.append(sum(wc * comb(*outs) for wc, comb in zip(w["combiner"][i], self.combiners[i])))  # type: ignore[arg-type]
        # which blocks end up loose ends is decided only at the derivation: every block feeds the output, as
        # DARTS concatenates every node (a mean keeps the scale of one block)
        return torch.stack(states[2:]).mean(0)


class CellAlphas(nn.Module):
    """A cell's architecture parameters: per branch, its input and op logits; per block, its combiner logits."""

    def __init__(self, steps: int, n_ops: int, n_comb: int) -> None:
        super().__init__()
        self.inputs = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(i // 2 + 2)) for i in range(2 * steps))
        self.ops = nn.Parameter(1e-3 * torch.randn(2 * steps, n_ops))
        self.combiners = nn.Parameter(1e-3 * torch.randn(steps, n_comb))

    def weights(self) -> dict[str, list[torch.Tensor]]:
        return {
            "input": [F.softmax(a, -1) for a in self.inputs],
            "op": list(F.softmax(self.ops, -1)),
            "combiner": list(F.softmax(self.combiners, -1)),
        }


class SuperTranslator(nn.Module):
    """:class:`tasks.translation.model.Translator`'s layout with super cells; ``arch_parameters()`` are the alphas."""

    def __init__(self, space: Seq2SeqSpace, vocab_size: int, d_model: int = 32, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.space = space
        C = self.d_model = int(d_model)
        self.embed = nn.Embedding(vocab_size, C, padding_idx=PAD)
        nn.init.normal_(self.embed.weight, std=C**-0.5)
        self.encoder = nn.ModuleList(SuperCell(space.encoder_steps, C, space.encoder_ops, space.combiners) for _ in range(layers))
        self.decoder = nn.ModuleList(SuperCell(space.decoder_steps, C, space.decoder_ops, space.combiners) for _ in range(layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(C), nn.LayerNorm(C)
        self.drop = nn.Dropout(dropout)
        self.alphas = nn.ModuleDict(
            {
                "encoder": CellAlphas(space.encoder_steps, len(space.encoder_ops), len(space.combiners)),
                "decoder": CellAlphas(space.decoder_steps, len(space.decoder_ops), len(space.combiners)),
            }
        )

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.parameters())

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(a) for a in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def arch_weights(self) -> dict[str, torch.Tensor]:
        out = {}
        for cell, alphas in self.alphas.items():
            w = alphas.weights()  # type: ignore[operator]
            out[f"{cell}.ops"] = torch.stack(w["op"])
            out[f"{cell}.combiners"] = torch.stack(w["combiner"])
        return out

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.embed(ids) * self.d_model**0.5 + sinusoid(pos, self.d_model))

    def forward(self, input_ids: torch.Tensor, decoder_input_ids: torch.Tensor | None = None) -> torch.Tensor:
        if decoder_input_ids is None:
            decoder_input_ids = shift_right(input_ids, BOS, PAD)
        mask = input_ids != PAD
        we, wd = self.alphas["encoder"].weights(), self.alphas["decoder"].weights()  # type: ignore[operator]
        ctx = SeqContext(causal=False, mask=mask)
        s0 = s1 = self._embed(input_ids)
        for cell in self.encoder:
            s0, s1 = s1, cell(s0, s1, ctx, we)
        memory = self.encoder_norm(s1)
        ctx = SeqContext(causal=True, memory=memory, memory_mask=mask)
        s0 = s1 = self._embed(decoder_input_ids)
        for cell in self.decoder:
            s0, s1 = s1, cell(s0, s1, ctx, wd)
        return F.linear(self.decoder_norm(s1), self.embed.weight)

    @torch.no_grad()
    def genotype(self) -> Seq2SeqGenotype:
        cells = []
        for cell, ops in (("encoder", self.space.encoder_ops), ("decoder", self.space.decoder_ops)):
            a: CellAlphas = self.alphas[cell]  # type: ignore[assignment]
            op_w = a.ops.detach().clone()
            if "zero" in ops and len(ops) > 1:
                op_w[:, ops.index("zero")] = -float("inf")
            if cell == "decoder":
                op_w = _keep_cross_attention(op_w, ops)
            blocks = []
            for i in range(len(a.combiners)):
                k1, k2 = 2 * i, 2 * i + 1
                blocks.append(
                    (
                        ops[int(op_w[k1].argmax())],
                        int(a.inputs[k1].argmax()),
                        ops[int(op_w[k2].argmax())],
                        int(a.inputs[k2].argmax()),
                        self.space.combiners[int(a.combiners[i].argmax())],
                    )
                )
            cells.append(tuple(blocks))
        return Seq2SeqGenotype(cells[0], cells[1])


def _keep_cross_attention(op_w: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
    """Op logits (branches, ops) whose argmax puts attention to the encoder on at least one branch."""
    cross = [k for k, op in enumerate(ops) if op.startswith("cross_attention")]
    if not cross or any(int(r.argmax()) in cross for r in op_w):
        return op_w
    sub = op_w[:, cross]
    flat = int(sub.argmax())
    branch, which = divmod(flat, len(cross))
    out = op_w.clone()
    out[branch, cross[which]] = float("inf")
    return out
