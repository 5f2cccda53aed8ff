"""All candidate ops of the edges leaving one state of a search cell, computed together.

The continuous relaxation of DARTS (Liu et al., "DARTS: Differentiable Architecture
Search", ICLR 2019) puts every candidate op on every edge and sums their outputs with
softmax(alpha) weights. Run literally (one module per op per edge, as
:class:`zoo.space.supernet.MixedOp` does), a cell launches hundreds of small kernels and
keeps every op's output twice for the backward pass (BN input and BN output).
:class:`EdgeBundle` computes the same function exactly, grouped by *source* state:

* ``none`` is skipped: its output and its gradient with respect to its weight are zero.
  (Its alpha still enters the softmax, so the other weights and every alpha gradient
  stay exact.)
* The input ReLU is computed once per source and shared by every conv op of every edge
  leaving it. The pools and their ``BatchNorm(affine=False)`` have no parameters, so in
  training mode they are the same on every edge leaving a source and run once;
  ``skip_connect`` (stride 1) is the input itself.
* Activations are channels-last: the depthwise convs of the DARTS ops run about twice as
  fast in that layout on CPU, and a stack of edges ``(E, N, H, W, C)`` is a batch of
  (samples x channels) matrices, so the 1x1 convs (pointwise convs, the two halves of
  ``FactorizedReduce``) of all edges and kinds run as one batched matmul without copies.
  Depthwise convs on the shared input run as one conv with a channel multiplier where
  that is faster (dilated kernels, small inputs), else per edge (see ``MULTIPLIER_MAX_NUMEL``).
* Batch statistics come from per-channel sums in two passes, the mean first, then the mean
  of squared deviations from it (:func:`batch_stats`): much faster on CPU than a Welford
  reduction over non-contiguous dimensions, and as exact as it in float32, where the
  one-pass ``E[z^2] - E[z]^2`` cancels catastrophically when a channel's mean is large
  against its spread. Everything downstream works on the centred input ``z - mean``
  (outputs, and the sums of the backward pass), for the same reason.
* The separable convs' inner ``BN + ReLU`` is one autograd function (:class:`BatchNormReLU`)
  and every op's final BN and the weighted sum are another (:class:`NormMix`); both keep
  only their inputs for the backward pass and fold normalisation (and edge weights) into
  one per-channel scale and shift, so no normalised tensor is ever stored.

Ops outside the DARTS set (e.g. ``nor_conv_3x3``) fall back to one module per edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.space.ops import OPS

BN_EPS = 1e-5
BN_MOMENTUM = 0.1

# name: (kernel, padding, dilation, number of ReLU-dwconv-pwconv-BN stages)
CONV_KINDS: dict[str, tuple[int, int, int, int]] = {
    "sep_conv_3x3": (3, 1, 1, 2),
    "sep_conv_5x5": (5, 2, 1, 2),
    "sep_conv_7x7": (7, 3, 1, 2),
    "dil_conv_3x3": (3, 2, 2, 1),
    "dil_conv_5x5": (5, 4, 2, 1),
}
POOL_KINDS: dict[str, str] = {"max_pool_3x3": "max", "avg_pool_3x3": "avg"}
BUNDLED = set(CONV_KINDS) | set(POOL_KINDS) | {"none", "skip_connect"}

# how a NormMix input is combined: one (N, C, H, W) unit shared by all edges, normalised or
# raw, or a (K*E, N, C, H, W) stack holding op kind k of edge e at index k*E + e
SHARED_NORM, SHARED_RAW, PER_EDGE = "shared_norm", "shared_raw", "per_edge"

# Depthwise convs of all edges on a shared input run as one conv with a channel multiplier
# when dilated or when the input has at most this many elements, else one conv per edge:
# measured on this project's CPUs (oneDNN, channels-last), the single call wins for dilated
# kernels at every size and for small inputs, and loses 2-3x for large undilated ones.
MULTIPLIER_MAX_NUMEL = 32768

Stats = tuple[torch.Tensor, torch.Tensor]


def batch_stats(z: torch.Tensor, running: Stats | None, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z - mean, mean, 1/std) per (group, channel) of ``z`` shaped (G, M, C), over the M samples.

    Training mode uses the batch and updates ``running`` (mean, var) as ``nn.BatchNorm2d``
    does (momentum 0.1, unbiased variance); eval mode returns the running statistics. The
    variance is the mean of the squared deviations from the mean (two passes), so it keeps
    float32 precision whatever the mean; the centred tensor (a new one, the caller may
    overwrite it) is returned for the caller to use rather than ``z``.
    """
    assert running is not None
    running_mean, running_var = running
    G, M, C = z.shape
    if training:
        mean = z.sum(dim=1) / M
        centred = z - mean.reshape(G, 1, C)
        var = (centred * centred).sum(dim=1) / M
        running_mean.mul_(1 - BN_MOMENTUM).add_(mean.reshape(-1), alpha=BN_MOMENTUM)
        running_var.mul_(1 - BN_MOMENTUM).add_(var.reshape(-1) * (M / max(M - 1, 1)), alpha=BN_MOMENTUM)
    else:
        mean, var = running_mean.reshape(G, C).clone(), running_var.reshape(G, C)
        centred = z - mean.reshape(G, 1, C)
    return centred, mean, torch.rsqrt(var + BN_EPS)


def _bn_input_grad(
    dy: torch.Tensor,
    centred: torch.Tensor,
    invstd: torch.Tensor,
    scale: torch.Tensor,
    S1: torch.Tensor,
    Syc: torch.Tensor,
    out: torch.Tensor,
) -> None:
    """Writes into ``out`` the gradient w.r.t. ``z`` of a batch-statistics BN whose output gradient is ``scale * dy``.

    Shapes: dy, centred = z - mean, out (G, M, C) (``out`` may be ``centred`` itself); invstd,
    scale, S1 = sum_M(dy), Syc = sum_M(dy * centred): (G, C). Only centred quantities enter,
    so nothing cancels when the mean is large against the spread.
    """
    G, M, C = centred.shape
    A = scale * invstd
    B = -invstd * invstd * (A * Syc) / M  # A * Syc: sum over the batch of (scale * dy) * normalised z
    torch.mul(centred, B.reshape(G, 1, C), out=out)
    out.addcmul_(dy, A.reshape(G, 1, C))
    out -= (A * S1 / M).reshape(G, 1, C)


def _centred(z: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``z - mean`` for z (G, M, C) and mean (G, C)."""
    return z - mean.reshape(mean.shape[0], 1, mean.shape[1])


class BatchNormReLU(torch.autograd.Function):
    """``relu(BatchNorm(affine=False)(z))`` for z shaped (G, M, C); keeps only z and the output."""

    @staticmethod
    def forward(ctx: Any, running: Stats, training: bool, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        G, M, C = z.shape
        centred, mean, invstd = batch_stats(z, running, training)
        y = centred.mul_(invstd.reshape(G, 1, C)).relu_()
        ctx.training = training
        ctx.save_for_backward(z, y, mean, invstd)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        z, y, mean, invstd = ctx.saved_tensors
        G, M, C = z.shape
        dy = grad * (y > 0)
        if not ctx.training:
            return None, None, dy * invstd.reshape(G, 1, C)
        dz = _centred(z, mean)
        _bn_input_grad(dy, dz, invstd, torch.ones_like(mean), dy.sum(dim=1), (dy * dz).sum(dim=1), dz)
        return None, None, dz


class NormMix(torch.autograd.Function):
    """``out[e] = sum_u W[e, col(u)] * BN(z_u)`` over BN(affine=False) units ``z_u``; out is (E, M, C).

    Tensors are (samples, channels) matrices, M = N*H*W. ``specs[t] = (mode, cols)``
    describes input ``zs[t]``: ``SHARED_NORM`` / ``SHARED_RAW`` for an (M, C) tensor used
    by every edge with weight column ``cols[0]`` (normalised or as is), ``PER_EDGE`` for a
    (K*E, M, C) stack whose entry ``k*E + e`` is kind ``k``'s output on edge ``e``, weighted
    by column ``cols[k]``. ``running[t]`` holds the (running_mean, running_var) buffers
    of a normalised input.

    Training mode normalises with batch statistics and updates the running ones like
    ``nn.BatchNorm2d``; eval mode uses the running statistics. Only the inputs and
    per-channel statistics are saved for the backward pass.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        specs: tuple[tuple[str, tuple[int, ...]], ...],
        running: list[Stats | None],
        training: bool,
        weights: torch.Tensor,
        *zs: torch.Tensor,
    ) -> torch.Tensor:
        E = weights.shape[0]
        M, C = zs[0].shape[-2:]
        out: torch.Tensor | None = None
        stats: list[torch.Tensor] = []

        def acc(z: torch.Tensor, scale: torch.Tensor) -> None:
            nonlocal out
            if out is None:
                out = z * scale
            else:
                out.addcmul_(z, scale)

        for (mode, cols), z, buf in zip(specs, zs, running):
            zv = z.reshape(-1, M, C)
            if mode == SHARED_RAW:
                acc(zv, weights[:, cols[0]].reshape(E, 1, 1))
                continue
            centred, mean, invstd = batch_stats(zv, buf, training)
            stats += [mean, invstd]
            for k, col in enumerate(cols):
                rows = slice(0, 1) if mode == SHARED_NORM else slice(k * E, (k + 1) * E)
                a = weights[:, col].reshape(E, 1) * invstd[rows]
                acc(centred[rows], a.reshape(E, 1, C))
            del centred
        assert out is not None
        ctx.specs, ctx.training = specs, training
        ctx.save_for_backward(weights, *zs, *stats)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        saved = ctx.saved_tensors
        weights, n = saved[0], len(ctx.specs)
        zs, stats = saved[1 : 1 + n], list(saved[1 + n :])
        g = grad.contiguous()
        E, M, C = g.shape
        need_w = ctx.needs_input_grad[3]
        d_weights = torch.zeros_like(weights)
        Q = g.sum(dim=1)  # (E, C): each edge's gradient summed per channel
        d_zs: list[torch.Tensor | None] = []
        for t, ((mode, cols), z) in enumerate(zip(ctx.specs, zs)):
            need_z = ctx.needs_input_grad[4 + t]
            zv = z.reshape(-1, M, C)
            if mode == SHARED_RAW:
                w = weights[:, cols[0]]
                if need_w:
                    d_weights[:, cols[0]] += (g * zv).sum(dim=(1, 2))
                d_zs.append(torch.matmul(w.reshape(1, E), g.reshape(E, -1)).reshape(z.shape) if need_z else None)
                continue
            mean, invstd = stats.pop(0), stats.pop(0)
            # P = sum_M g_e * (z - mean), (E, C): the alpha gradient, and the batch-statistics part of z's
            need_P = need_w or (need_z and ctx.training)
            if mode == SHARED_NORM:
                w = weights[:, cols[0]]
                zc = _centred(zv, mean) if need_P else None
                P = (g * zc).sum(dim=1) if zc is not None else None
                if need_w:
                    d_weights[:, cols[0]] += (invstd * P).sum(dim=1)
                if not need_z:
                    d_zs.append(None)
                    continue
                dy = torch.matmul(w.reshape(1, E), g.reshape(E, -1)).reshape(1, M, C)
                if ctx.training:
                    assert zc is not None and P is not None
                    wc = w.reshape(E, 1)
                    _bn_input_grad(dy, zc, invstd, torch.ones_like(mean), (wc * Q).sum(0, keepdim=True), (wc * P).sum(0, keepdim=True), zc)
                    dz = zc
                else:
                    dz = dy.mul_(invstd.reshape(1, 1, C))
                d_zs.append(dz.reshape(z.shape))
                continue
            dzv = torch.empty_like(zv) if need_z else None
            for k, col in enumerate(cols):
                rows = slice(k * E, (k + 1) * E)
                w = weights[:, col].reshape(E, 1)
                if need_P:
                    # centred in the gradient's own buffer when there is one (overwritten in place below)
                    zc = (
                        torch.sub(zv[rows], mean[rows].reshape(E, 1, C), out=dzv[rows])
                        if dzv is not None
                        else _centred(zv[rows], mean[rows])
                    )
                    P = (g * zc).sum(dim=1)
                    if need_w:
                        d_weights[:, col] += (invstd[rows] * P).sum(dim=1)
                if dzv is None:
                    continue
                if ctx.training:
                    _bn_input_grad(g, zc, invstd[rows], w, Q, P, zc)
                else:
                    torch.mul(g, (w * invstd[rows]).reshape(E, 1, C), out=dzv[rows])
            d_zs.append(dzv.reshape(z.shape) if dzv is not None else None)
        return (None, None, None, d_weights if need_w else None, *d_zs)


def _init_conv_weight(*shape: int) -> nn.Parameter:
    """Stacked conv weights ``(G, C_out, C_in/groups[, kh, kw])``, each slice initialised like ``nn.Conv2d``."""
    w = torch.empty(*shape)
    for s in w:
        nn.init.kaiming_uniform_(s, a=math.sqrt(5))
    return nn.Parameter(w)


def _pointwise(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-group 1x1 convs as one batched matmul: w (G, C_out, C_in), x (G, N, H, W, C_in) -> (G, N, H, W, C_out)."""
    G, N, H, W, C = x.shape
    return torch.bmm(x.reshape(G, N * H * W, C), w.transpose(1, 2)).reshape(G, N, H, W, w.shape[1])


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> contiguous (N, H, W, C); free for a channels-last tensor."""
    return x.permute(0, 2, 3, 1).contiguous()


class EdgeBundle(nn.Module):
    """The ``E`` mixed edges leaving one state: ``forward(h, w) -> (E, N, H', W', C)`` (channels last).

    ``w`` is the (E, len(primitives)) matrix of softmax weights of those edges. The
    output equals ``stack([MixedOp_e(h, w[e]) for e in range(E)])`` (with channels moved last) for
    :class:`zoo.space.supernet.MixedOp` edges holding the same weights (see
    :meth:`load_mixed_ops`), in training and in eval mode.

    Weights are stacked per edge (and kind): ``dw1[kind]``, ``dw2[kind]`` (E, C, 1, k, k);
    ``pw_single`` (K1*E, C, C), ``pw1_double``/``pw2_double`` (K2*E, C, C) with kind ``k``
    of edge ``e`` at ``k*E + e``; ``fr_conv1``/``fr_conv2`` (E, C/2, C).
    """

    def __init__(self, C: int, stride: int, n_edges: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.C, self.stride, self.E = C, stride, n_edges
        self.primitives = list(primitives)
        self.col = {p: i for i, p in enumerate(self.primitives)}
        E = n_edges
        self.single = [p for p in self.primitives if p in CONV_KINDS and CONV_KINDS[p][3] == 1]
        self.double = [p for p in self.primitives if p in CONV_KINDS and CONV_KINDS[p][3] == 2]
        self.pools = [p for p in self.primitives if p in POOL_KINDS]
        self.skip = "skip_connect" in self.primitives
        self.others = [p for p in self.primitives if p not in BUNDLED]
        k_of = {p: CONV_KINDS[p][0] for p in self.single + self.double}
        self.dw1 = nn.ParameterDict({p: _init_conv_weight(E, C, 1, k_of[p], k_of[p]) for p in self.single + self.double})
        if self.single:
            self.pw_single = _init_conv_weight(len(self.single) * E, C, C)
            self._stat_buffers("bn_single", len(self.single) * E * C)
        if self.double:
            K2 = len(self.double)
            self.pw1_double = _init_conv_weight(K2 * E, C, C)
            self._stat_buffers("bn1_double", K2 * E * C)
            self.dw2 = nn.ParameterDict({p: _init_conv_weight(E, C, 1, k_of[p], k_of[p]) for p in self.double})
            self.pw2_double = _init_conv_weight(K2 * E, C, C)
            self._stat_buffers("bn2_double", K2 * E * C)
        for p in self.pools:
            self._stat_buffers(f"bn_{POOL_KINDS[p]}_pool", C)
        if self.skip and stride != 1:
            self.fr_conv1 = _init_conv_weight(E, C // 2, C)
            self.fr_conv2 = _init_conv_weight(E, C - C // 2, C)
            self._stat_buffers("bn_reduce", E * C)
        self.other_ops = nn.ModuleList()
        for _ in range(E):
            ops = nn.ModuleDict()
            for p in self.others:
                m = OPS.get(p)(C, stride, False)
                ops[p] = nn.Sequential(m, nn.BatchNorm2d(C, affine=False)) if "pool" in p else m
            self.other_ops.append(ops)

    def _stat_buffers(self, name: str, n: int) -> None:
        self.register_buffer(f"{name}_mean", torch.zeros(n))
        self.register_buffer(f"{name}_var", torch.ones(n))

    def _stats(self, name: str) -> Stats:
        return getattr(self, f"{name}_mean"), getattr(self, f"{name}_var")

    # ---- forward
    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """h: (N, C, H, W), best channels-last; w: (E, len(primitives)) -> (E, N, H', W', C)."""
        s, C, E = self.stride, self.C, self.E
        specs: list[tuple[str, tuple[int, ...]]] = []
        zs: list[torch.Tensor] = []
        bufs: list[Stats | None] = []
        for p in self.pools:
            if POOL_KINDS[p] == "max":
                z = F.max_pool2d(h, 3, s, 1)
            else:
                z = F.avg_pool2d(h, 3, s, 1, count_include_pad=False)
            specs.append((SHARED_NORM, (self.col[p],)))
            zs.append(nhwc(z).unsqueeze(0))
            bufs.append(self._stats(f"bn_{POOL_KINDS[p]}_pool"))
        r = F.relu(h) if (self.single or self.double or (self.skip and s != 1)) else h
        if self.skip:
            if s == 1:
                specs.append((SHARED_RAW, (self.col["skip_connect"],)))
                zs.append(nhwc(h).unsqueeze(0))
                bufs.append(None)
            else:
                zs.append(self._factorized_reduce(r))
                specs.append((PER_EDGE, (self.col["skip_connect"],)))
                bufs.append(self._stats("bn_reduce"))
        if self.single:
            zs.append(_pointwise(self.pw_single, self._depthwise(r, self.single, self.dw1, s)))
            specs.append((PER_EDGE, tuple(self.col[p] for p in self.single)))
            bufs.append(self._stats("bn_single"))
        if self.double:
            y = _pointwise(self.pw1_double, self._depthwise(r, self.double, self.dw1, s))
            G, N, H, W, _ = y.shape
            y = BatchNormReLU.apply(self._stats("bn1_double"), self.training, y.reshape(G, -1, C)).reshape(G, N, H, W, C)
            zs.append(_pointwise(self.pw2_double, self._depthwise(y, self.double, self.dw2, 1)))
            specs.append((PER_EDGE, tuple(self.col[p] for p in self.double)))
            bufs.append(self._stats("bn2_double"))
        N = h.shape[0]
        H, W = [(d - 1) // s + 1 for d in h.shape[-2:]]  # 3x3/pad-1 pools, dwconvs and FactorizedReduce agree
        if zs:
            out = NormMix.apply(tuple(specs), bufs, self.training, w, *(z.reshape(-1, N * H * W, C) for z in zs))
            out = out.reshape(E, N, H, W, C)
        else:  # only `none` and fallback ops
            out = h.new_zeros(E, N, H, W, C)
        if self.others:
            extra = [nhwc(sum(w[e, self.col[p]] * ops[p](h) for p in self.others)) for e, ops in enumerate(self.other_ops)]  # type: ignore[arg-type]
            out = out + torch.stack(extra)
        return out

    def _depthwise(self, x: torch.Tensor, kinds: list[str], weights: nn.ParameterDict, stride: int) -> torch.Tensor:
        """Depthwise convs of ``kinds`` on every edge -> (len(kinds)*E, N, H', W', C).

        ``x`` is the shared input (N, C, H, W) or one input per kind and edge (K*E, N, H, W, C).
        """
        C, E = self.C, self.E
        outs = []
        for k, p in enumerate(kinds):
            ksize, pad, dil, _ = CONV_KINDS[p]
            if x.dim() == 4 and (dil > 1 or x.numel() <= MULTIPLIER_MAX_NUMEL):
                # one depthwise conv with a channel multiplier (output channel c*E + e) for all edges
                w = weights[p].transpose(0, 1).reshape(C * E, 1, ksize, ksize)
                y = nhwc(F.conv2d(x, w, stride=stride, padding=pad, dilation=dil, groups=C))
                outs.append(y.reshape(*y.shape[:3], C, E).permute(4, 0, 1, 2, 3))
                continue
            for e in range(E):
                xe = x if x.dim() == 4 else x[k * E + e].permute(0, 3, 1, 2)
                outs.append(nhwc(F.conv2d(xe, weights[p][e], stride=stride, padding=pad, dilation=dil, groups=C)).unsqueeze(0))
        return torch.cat(outs)

    def _factorized_reduce(self, r: torch.Tensor) -> torch.Tensor:
        """Stride-2 ``skip_connect`` of every edge before its BN: two offset 1x1 stride-2 convs -> (E, M, C)."""
        C, E = self.C, self.E
        if r.shape[-1] % 2 or r.shape[-2] % 2:
            r = F.pad(r, (0, r.shape[-1] % 2, 0, r.shape[-2] % 2))
        rp = r.permute(0, 2, 3, 1)
        halves = []
        for w, x in ((self.fr_conv1, rp[:, ::2, ::2]), (self.fr_conv2, rp[:, 1::2, 1::2])):
            y = torch.mm(x.reshape(-1, C), w.permute(2, 0, 1).reshape(C, -1))  # (M, E * C_half)
            halves.append(y.reshape(y.shape[0], E, -1))
        return torch.cat(halves, dim=2).transpose(0, 1).contiguous()

    # ---- weights from textbook mixed ops
    @torch.no_grad()
    def load_mixed_ops(self, mixed_ops: Sequence[nn.Module]) -> None:
        """Copies the weights and BN statistics of ``E`` :class:`MixedOp` edges (same order as the outputs).

        The pool BNs of a bundle are shared; their statistics are taken from the first edge
        (in training mode every edge leaving a source sees the same pooled input).
        """
        C, E = self.C, self.E
        assert len(mixed_ops) == E
        for e, mixed in enumerate(mixed_ops):
            ops = dict(zip(mixed.primitives, mixed._ops))  # type: ignore[attr-defined]
            for k, p in enumerate(self.single):
                relu_dw_pw_bn = ops[p]
                self.dw1[p][e].copy_(relu_dw_pw_bn[1].weight)
                self.pw_single[k * E + e].copy_(relu_dw_pw_bn[2].weight[:, :, 0, 0])
                _copy_stats(self, "bn_single", (k * E + e) * C, C, relu_dw_pw_bn[3])
            for k, p in enumerate(self.double):
                first, second = ops[p][0], ops[p][1]
                self.dw1[p][e].copy_(first[1].weight)
                self.pw1_double[k * E + e].copy_(first[2].weight[:, :, 0, 0])
                _copy_stats(self, "bn1_double", (k * E + e) * C, C, first[3])
                self.dw2[p][e].copy_(second[1].weight)
                self.pw2_double[k * E + e].copy_(second[2].weight[:, :, 0, 0])
                _copy_stats(self, "bn2_double", (k * E + e) * C, C, second[3])
            if self.skip and self.stride != 1:
                fr = ops["skip_connect"]
                self.fr_conv1[e].copy_(fr.conv_1.weight[:, :, 0, 0])
                self.fr_conv2[e].copy_(fr.conv_2.weight[:, :, 0, 0])
                _copy_stats(self, "bn_reduce", e * C, C, fr.bn)
            if e == 0:
                for p in self.pools:
                    _copy_stats(self, f"bn_{POOL_KINDS[p]}_pool", 0, C, ops[p][1])
            for p in self.others:
                self.other_ops[e][p].load_state_dict(ops[p].state_dict())


def _copy_stats(bundle: EdgeBundle, name: str, start: int, n: int, bn: nn.Module) -> None:
    mean, var = bundle._stats(name)
    mean[start : start + n].copy_(bn.running_mean)
    var[start : start + n].copy_(bn.running_var)
