"""The fused batch norms of the fast supernet keep float32 precision when a channel's mean dwarfs its spread.

Batch statistics and the sums of the backward pass are taken around the mean (two passes), so
nothing cancels: the one-pass ``E[z^2] - E[z]^2`` loses every digit of a unit variance at a mean
of 1000 in float32 (and can come out negative). Reference: the same functions in float64 on the
same float32-rounded inputs.
"""

from __future__ import annotations

import pytest
import torch

from zoo.space.edge_bundle import PER_EDGE, SHARED_NORM, SHARED_RAW, BatchNormReLU, NormMix

pytestmark = pytest.mark.usefixtures("one_thread")

E, M, C = 2, 512, 3
SPECS = ((SHARED_NORM, (0,)), (PER_EDGE, (1, 2)), (SHARED_RAW, (3,)))


def _norm_mix(dtype: torch.dtype, zs: list[torch.Tensor], w: torch.Tensor, g: torch.Tensor, training: bool) -> tuple[torch.Tensor, ...]:
    zs = [z.to(dtype).requires_grad_() for z in zs]
    w = w.to(dtype).requires_grad_()
    running = [
        (torch.full((C,), 1000.0, dtype=dtype), torch.ones(C, dtype=dtype)),
        (torch.full((2 * E * C,), 1000.0, dtype=dtype), torch.ones(2 * E * C, dtype=dtype)),
        None,
    ]
    out = NormMix.apply(SPECS, running, training, w, *zs)
    grads = torch.autograd.grad(out, (w, *zs), g.to(dtype))
    return tuple(t.detach().double() for t in (out, *grads, running[0][1], running[1][1]))


@pytest.mark.parametrize("training", [True, False])
def test_norm_mix_float32_matches_float64_at_a_large_mean(training: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    # float32 inputs (mean 1000, std 1 per channel), so both precisions see the same numbers
    zs = [
        (1000 + torch.randn(1, M, C, generator=gen)).float(),
        (1000 + torch.randn(2 * E, M, C, generator=gen)).float(),
        torch.randn(1, M, C, generator=gen).float(),
    ]
    w = torch.softmax(torch.randn(E, 4, generator=gen), -1).float()
    g = torch.randn(E, M, C, generator=gen).float()
    want = _norm_mix(torch.float64, zs, w, g, training)
    got = _norm_mix(torch.float32, zs, w, g, training)
    names = ["out", "d_weights", "d_z_shared", "d_z_per_edge", "d_z_raw", "running_var_shared", "running_var_per_edge"]
    for name, a, b in zip(names, got, want):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max())), (name, float((a - b).abs().max()), float(b.abs().max()))


def test_batch_norm_relu_float32_matches_float64_at_a_large_mean() -> None:
    gen = torch.Generator().manual_seed(1)
    z = (1000 + torch.randn(3, M, C, generator=gen)).float()
    g = torch.randn(3, M, C, generator=gen).float()
    results = {}
    for dtype in (torch.float64, torch.float32):
        zz = z.to(dtype).requires_grad_()
        stats = (torch.zeros(3 * C, dtype=dtype), torch.ones(3 * C, dtype=dtype))
        y = BatchNormReLU.apply(stats, True, zz)
        (dz,) = torch.autograd.grad(y, zz, g.to(dtype))
        results[dtype] = [t.detach().double() for t in (y, dz, stats[1])]
    for name, a, b in zip(["out", "d_z", "running_var"], results[torch.float32], results[torch.float64]):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max())), (name, float((a - b).abs().max()), float(b.abs().max()))
