"""The sequence ops of the translation cells, on (N, L, C) token states, causal on request.

The Evolved Transformer's search space (So, Liang & Le, "The Evolved Transformer", ICML 2019)
gives each branch of a block one layer: self-attention with several head counts, attention to
the encoder (decoder only), depthwise-separable convolutions of widths 3, 7, 9 and 11, a gated
linear unit (Dauphin et al., ICML 2017), a feed-forward layer (ReLU or swish), identity or
nothing. Every parametric op here normalises its input first (pre-norm, as the Evolved
Transformer's branches do), so identity branches are clean residual paths.

Every op is called as ``op(x, ctx, start)``: ``x`` holds the states of positions ``0..L-1`` and
the op returns its output for positions ``start..L-1`` only. A full pass uses ``start=0``;
incremental decoding passes the cached history plus the new position and ``start=L-1``, so
one op computes both ways and the two agree by construction (a convolution reads the ``k - 1``
positions before ``start``, attention reads every position up to the query's own).

Causality (``ctx.causal``, the decoder) holds for every op: convolutions are left-padded by
``k - 1`` so output ``t`` reads inputs ``t-k+1..t``; self-attention masks keys after the query;
the pointwise ops read position ``t`` alone; cross-attention reads the encoder only. In the
encoder (``ctx.causal`` false) convolutions are centred and padding positions (``ctx.mask``)
are zeroed before they are read, and attention ignores them, so a sentence's outputs do not
depend on how much padding its batch adds.

The ops are registered in :data:`zoo.space.ops.OPS` under the domain ``seq2seq``; they are built
as ``factory(C, stride, affine)`` like every op (stride must be 1: sequences keep their length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.space.ops import op

DOMAIN = "seq2seq"


@dataclass
class SeqContext:
    """What an op needs besides its input: whether it is in the decoder (``causal``), which input
    positions are real tokens (``mask``, (N, L) bool, ``None``: all), and the encoder's output
    (``memory``, (N, S, C)) with its mask for attention to the encoder."""

    causal: bool = False
    mask: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    memory_mask: torch.Tensor | None = None


class SeqOp(nn.Module):
    """Base of the sequence ops: ``forward(x, ctx, start)`` -> outputs for positions ``start..``."""

    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Zero(SeqOp):
    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        return x[:, start:].mul(0.0)


class Identity(SeqOp):
    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        return x[:, start:]


class SepConv(SeqOp):
    """LayerNorm -> depthwise 1-D convolution of width ``k`` -> pointwise linear -> ReLU."""

    def __init__(self, C: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.norm = nn.LayerNorm(C)
        self.depthwise = nn.Conv1d(C, C, k, groups=C, bias=False)
        self.pointwise = nn.Linear(C, C)

    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        h = self.norm(x)
        if ctx.mask is not None:
            h = h * ctx.mask[..., None].to(h.dtype)
        k, L = self.k, x.shape[1]
        if ctx.causal:
            left, right = k - 1, 0
        else:
            left = right = (k - 1) // 2
        lo = start - left  # the first input position output `start` reads
        window = h[:, max(lo, 0) : L].transpose(1, 2)
        window = F.pad(window, (max(-lo, 0), right))
        out = self.depthwise(window).transpose(1, 2)
        # non-causal outputs near the end read padding beyond L (zeros), as the centred convolution does
        return F.relu(self.pointwise(out[:, : L - start]))


class GLU(SeqOp):
    """LayerNorm -> linear to 2C -> gated linear unit (Dauphin et al., ICML 2017)."""

    def __init__(self, C: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(C)
        self.proj = nn.Linear(C, 2 * C)

    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        return F.glu(self.proj(self.norm(x[:, start:])), dim=-1)


class FeedForward(SeqOp):
    """LayerNorm -> linear to ``mult * C`` -> ReLU or swish -> linear to C (the Transformer's FFN)."""

    def __init__(self, C: int, act: str, mult: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(C)
        self.up = nn.Linear(C, mult * C)
        self.down = nn.Linear(mult * C, C)
        self.act = nn.ReLU() if act == "relu" else nn.SiLU()

    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        return self.down(self.act(self.up(self.norm(x[:, start:]))))


def heads_for(C: int, heads: int) -> int:
    """The largest head count <= ``heads`` that divides C (a narrow model keeps whole heads)."""
    return max(h for h in range(1, heads + 1) if C % h == 0)


class Attention(SeqOp):
    """LayerNorm -> multi-head scaled dot-product attention (Vaswani et al. 2017) -> output projection.

    ``cross``: queries from the decoder, keys and values from ``ctx.memory`` (the encoder output);
    else self-attention over ``x``, masked to earlier positions when ``ctx.causal``."""

    def __init__(self, C: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        self.heads = heads_for(C, heads)
        self.cross = cross
        self.norm = nn.LayerNorm(C)
        self.q = nn.Linear(C, C)
        self.kv = nn.Linear(C, 2 * C)
        self.out = nn.Linear(C, C)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        N, L, C = t.shape
        return t.view(N, L, self.heads, C // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, ctx: SeqContext, start: int = 0) -> torch.Tensor:
        h = self.norm(x)
        q = self._split(self.q(h[:, start:]))
        if self.cross:
            if ctx.memory is None:
                raise ValueError("cross-attention needs the encoder output (ctx.memory); it is a decoder op")
            k, v = self.kv(ctx.memory).chunk(2, dim=-1)
            key_mask = ctx.memory_mask
        else:
            k, v = self.kv(h).chunk(2, dim=-1)
            key_mask = None if ctx.causal else ctx.mask
        k, v = self._split(k), self._split(v)
        Lq, Lk = q.shape[2], k.shape[2]
        allowed = None
        if key_mask is not None:
            allowed = key_mask[:, None, None, :].bool()
        if ctx.causal and not self.cross:
            future = torch.arange(Lk, device=x.device)[None, :] > (start + torch.arange(Lq, device=x.device))[:, None]
            allowed = ~future if allowed is None else allowed & ~future
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        N, _, _, D = out.shape
        return self.out(out.transpose(1, 2).reshape(N, Lq, self.heads * D))


def _registered(name: str, build: object) -> None:
    def factory(C: int, stride: int = 1, affine: bool = True) -> nn.Module:
        if stride != 1:
            raise ValueError(f"op {name!r} keeps the sequence length; stride must be 1, got {stride}")
        return build(C)  # type: ignore[operator]

    op(name, DOMAIN, parametric=name not in ("zero", "identity"))(factory)


ENCODER_OPS: tuple[str, ...] = (
    "zero",
    "identity",
    "self_attention_4",
    "self_attention_8",
    "sep_conv_3x1",
    "sep_conv_7x1",
    "sep_conv_9x1",
    "sep_conv_11x1",
    "glu",
    "ffn_relu",
    "ffn_swish",
)
DECODER_OPS: tuple[str, ...] = (*ENCODER_OPS, "cross_attention_4", "cross_attention_8")
COMBINERS: tuple[str, ...] = ("add", "mul", "concat")  # how a block joins its two branches (the Evolved Transformer's)

_registered("zero", lambda C: Zero())
_registered("identity", lambda C: Identity())
for _h in (4, 8):
    _registered(f"self_attention_{_h}", lambda C, h=_h: Attention(C, h))
    _registered(f"cross_attention_{_h}", lambda C, h=_h: Attention(C, h, cross=True))
for _k in (3, 7, 9, 11):
    _registered(f"sep_conv_{_k}x1", lambda C, k=_k: SepConv(C, k))
_registered("glu", lambda C: GLU(C))
_registered("ffn_relu", lambda C: FeedForward(C, "relu"))
_registered("ffn_swish", lambda C: FeedForward(C, "swish"))


class Combiner(nn.Module):
    """Joins a block's two branch outputs: ``add``, ``mul`` (element-wise) or ``concat`` (then a linear back to C)."""

    def __init__(self, kind: str, C: int) -> None:
        super().__init__()
        if kind not in COMBINERS:
            raise ValueError(f"combiner {kind!r} is unknown; allowed: {', '.join(COMBINERS)}")
        self.kind = kind
        self.proj = nn.Linear(2 * C, C) if kind == "concat" else None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.kind == "add":
            return a + b
        if self.kind == "mul":
            return a * b
        return self.proj(torch.cat([a, b], dim=-1))  # type: ignore[misc]


def sinusoid(positions: torch.Tensor, C: int) -> torch.Tensor:
    """The Transformer's sinusoidal position encodings (Vaswani et al. 2017) for integer ``positions`` (L,) -> (L, C).

    Computed on the fly (no buffer), so a model loaded by ``from_pretrained`` has them right."""
    half = C // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / max(half, 1))
    angle = positions.float()[:, None] * freq[None, :]
    enc = torch.cat([angle.sin(), angle.cos()], dim=-1)
    return F.pad(enc, (0, C - 2 * half))
