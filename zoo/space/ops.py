"""Candidate operations of the cell search space, one registry for all of them.

Every op is built as ``factory(C, stride, affine) -> nn.Module`` and maps a tensor with
``C`` channels to one with ``C`` channels (spatial size divided by ``stride``).
``domain`` says which tensors an op accepts:

* ``image``: (N, C, H, W). The DARTS set (Liu et al., "DARTS: Differentiable
  Architecture Search", ICLR 2019) and the NAS-Bench-201 set (Dong & Yang, ICLR 2020).
* ``sequence``: (N, C, L), causal-free 1-D ops for encoder/decoder cells
  (in the spirit of So et al., "The Evolved Transformer", ICML 2019).
* ``dense``: (N, C), for policy and value networks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from zoo.registry import Registry

OpFactory = Callable[[int, int, bool], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    name: str
    domain: str
    factory: OpFactory
    parametric: bool = True

    def __call__(self, C: int, stride: int = 1, affine: bool = True) -> nn.Module:
        return self.factory(C, stride, affine)


OPS: Registry[OpSpec] = Registry("op")


def op(name: str, domain: str, parametric: bool = True) -> Callable[[OpFactory], OpFactory]:
    def deco(fn: OpFactory) -> OpFactory:
        OPS.add(name, OpSpec(name, domain, fn, parametric))
        return fn

    return deco


def ops_for(domain: str) -> list[str]:
    return [n for n, s in OPS.items() if s.domain == domain]


# ---------------------------------------------------------------- building blocks
class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in: int, C_out: int, k: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, k, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, padding: int, dilation: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, k, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked DilConv(dilation=1) blocks, the first carrying the stride (DARTS)."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(C_in, C_in, k, stride, padding, 1, affine),
            DilConv(C_in, C_out, k, 1, padding, 1, affine),
        )


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the output shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        if x.dim() == 4:
            return x[:, :, :: self.stride, :: self.stride].mul(0.0)
        if x.dim() == 3:
            return x[:, :, :: self.stride].mul(0.0)
        return x.mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1x1 stride-2 convs (Zoph et al. 2018).

    Odd sizes are padded on the bottom/right so both halves have the same shape.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            x = nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


class Pool(nn.Module):
    def __init__(self, kind: str, stride: int) -> None:
        super().__init__()
        if kind == "max":
            self.pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


# ---------------------------------------------------------------- image ops (DARTS set)
op("none", "image", parametric=False)(lambda C, s, a: Zero(s))
op("max_pool_3x3", "image", parametric=False)(lambda C, s, a: Pool("max", s))
op("avg_pool_3x3", "image", parametric=False)(lambda C, s, a: Pool("avg", s))
op("skip_connect", "image", parametric=False)(lambda C, s, a: Identity() if s == 1 else FactorizedReduce(C, C, a))
op("sep_conv_3x3", "image")(lambda C, s, a: SepConv(C, C, 3, s, 1, a))
op("sep_conv_5x5", "image")(lambda C, s, a: SepConv(C, C, 5, s, 2, a))
op("sep_conv_7x7", "image")(lambda C, s, a: SepConv(C, C, 7, s, 3, a))
op("dil_conv_3x3", "image")(lambda C, s, a: DilConv(C, C, 3, s, 2, 2, a))
op("dil_conv_5x5", "image")(lambda C, s, a: DilConv(C, C, 5, s, 4, 2, a))
op("conv_7x1_1x7", "image")(
    lambda C, s, a: nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(C, C, (1, 7), stride=(1, s), padding=(0, 3), bias=False),
        nn.Conv2d(C, C, (7, 1), stride=(s, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(C, affine=a),
    )
)
# NAS-Bench-201 set (ReLU-Conv-BN)
op("nor_conv_1x1", "image")(lambda C, s, a: ReLUConvBN(C, C, 1, s, 0, a))
op("nor_conv_3x3", "image")(lambda C, s, a: ReLUConvBN(C, C, 3, s, 1, a))

DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


# ---------------------------------------------------------------- sequence ops (N, C, L)
class SeqConv(nn.Module):
    """ReLU -> (depthwise-separable) 1-D conv -> BN over the channel axis."""

    def __init__(self, C: int, k: int, stride: int, affine: bool, separable: bool, dilation: int = 1):
        super().__init__()
        pad = dilation * (k - 1) // 2
        layers: list[nn.Module] = [nn.ReLU(inplace=False)]
        if separable:
            layers += [
                nn.Conv1d(C, C, k, stride, pad, dilation=dilation, groups=C, bias=False),
                nn.Conv1d(C, C, 1, bias=False),
            ]
        else:
            layers.append(nn.Conv1d(C, C, k, stride, pad, dilation=dilation, bias=False))
        layers.append(nn.BatchNorm1d(C, affine=affine))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SeqGLU(nn.Module):
    """Gated linear unit (Dauphin et al. 2017) over the channel axis."""

    def __init__(self, C: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(C, 2 * C, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.proj(x), dim=1)


class SeqSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) on (N, C, L) tensors."""

    def __init__(self, C: int, stride: int, heads: int = 4) -> None:
        super().__init__()
        heads = max(h for h in range(1, heads + 1) if C % h == 0)
        self.norm = nn.LayerNorm(C)
        self.attn = nn.MultiheadAttention(C, heads, batch_first=True)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2))
        out, _ = self.attn(h, h, h, need_weights=False)
        out = out.transpose(1, 2)
        return out[:, :, :: self.stride] if self.stride > 1 else out


class SeqIdentity(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride] if self.stride > 1 else x


op("seq_none", "sequence", parametric=False)(lambda C, s, a: Zero(s))
op("seq_identity", "sequence", parametric=False)(lambda C, s, a: SeqIdentity(s))
op("seq_conv_1x1", "sequence")(lambda C, s, a: SeqConv(C, 1, s, a, separable=False))
op("seq_conv_3", "sequence")(lambda C, s, a: SeqConv(C, 3, s, a, separable=False))
op("seq_sep_conv_3", "sequence")(lambda C, s, a: SeqConv(C, 3, s, a, separable=True))
op("seq_sep_conv_7", "sequence")(lambda C, s, a: SeqConv(C, 7, s, a, separable=True))
op("seq_dil_conv_3", "sequence")(lambda C, s, a: SeqConv(C, 3, s, a, separable=True, dilation=2))
op("seq_glu", "sequence")(lambda C, s, a: SeqGLU(C, s))
op("seq_self_attention", "sequence")(lambda C, s, a: SeqSelfAttention(C, s))


# ---------------------------------------------------------------- dense ops (N, C)
# For policy and value networks (the RL task): a linear layer with one of several activations,
# a wider two-layer block ("linear of several widths"), layer norm then linear, a gated linear unit
# (Dauphin et al., ICML 2017), the residual (identity) and zero.
def _dense(C: int, act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(C, C), act)


class DenseMLP(nn.Sequential):
    """Linear(C, width * C) -> activation -> Linear(width * C, C)."""

    def __init__(self, C: int, width: int, act: nn.Module) -> None:
        super().__init__(nn.Linear(C, width * C), act, nn.Linear(width * C, C))


op("dense_none", "dense", parametric=False)(lambda C, s, a: Zero(1))
op("dense_identity", "dense", parametric=False)(lambda C, s, a: Identity())
op("dense_relu", "dense")(lambda C, s, a: _dense(C, nn.ReLU()))
op("dense_tanh", "dense")(lambda C, s, a: _dense(C, nn.Tanh()))
op("dense_silu", "dense")(lambda C, s, a: _dense(C, nn.SiLU()))
op("dense_elu", "dense")(lambda C, s, a: _dense(C, nn.ELU()))
op("dense_sigmoid_gate", "dense")(lambda C, s, a: _GatedDense(C))
op("dense_layer_norm", "dense")(lambda C, s, a: nn.Sequential(nn.LayerNorm(C, elementwise_affine=a), nn.Linear(C, C)))
op("dense_wide_tanh", "dense")(lambda C, s, a: DenseMLP(C, 2, nn.Tanh()))
op("dense_wide_relu", "dense")(lambda C, s, a: DenseMLP(C, 4, nn.ReLU()))


class _GatedDense(nn.Module):
    """Gated linear unit: ``(W x) * sigmoid(V x)``."""

    def __init__(self, C: int) -> None:
        super().__init__()
        self.value = nn.Linear(C, C)
        self.gate = nn.Linear(C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))
