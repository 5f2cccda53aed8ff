"""Every registered op keeps channels and divides the resolution by its stride, on odd sizes too."""

from __future__ import annotations

import pytest
import torch

from zoo.space.ops import OPS


def _input(domain: str, size: int) -> torch.Tensor:
    if domain == "image":
        return torch.randn(2, 8, size, size + 2)
    if domain == "sequence":
        return torch.randn(2, 8, size)
    if domain == "seq2seq":  # token states (N, L, C)
        return torch.randn(2, size, 8)
    return torch.randn(2, 8)


def _call(domain: str, op: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """seq2seq ops read a context besides their input (decoder side: causal, with an encoder output to attend to)."""
    if domain == "seq2seq":
        from tasks.translation.ops import SeqContext

        return op(x, SeqContext(causal=True, memory=torch.randn(2, 5, 8), memory_mask=torch.ones(2, 5, dtype=torch.bool)))
    return op(x)


@pytest.mark.parametrize("name", OPS.names())
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_output_shape_and_gradient(name: str, stride: int, size: int) -> None:
    spec = OPS.get(name)
    if spec.domain == "dense" and stride == 2:
        pytest.skip("dense ops have no resolution")
    if spec.domain == "seq2seq" and stride == 2:
        with pytest.raises(ValueError, match="stride must be 1"):  # sequences keep their length: refused, not mis-built
            spec(8, stride, True)
        return
    op = spec(8, stride, True)
    x = _input(spec.domain, size).requires_grad_(True)
    y = _call(spec.domain, op, x)
    if spec.domain == "image":
        expected = (2, 8, -(-size // stride), -(-(size + 2) // stride))
    elif spec.domain == "sequence":
        expected = (2, 8, -(-size // stride))
    elif spec.domain == "seq2seq":
        expected = (2, size, 8)
    else:
        expected = (2, 8)
    assert tuple(y.shape) == expected, f"{name} stride {stride}: {tuple(y.shape)} != {expected}"
    y.sum().backward()
    if name.endswith("none") or name == "zero":
        assert float(x.grad.abs().sum()) == 0.0
    else:
        assert x.grad is not None and float(x.grad.abs().sum()) > 0
    has_weights = any(p.requires_grad for p in op.parameters())
    if spec.parametric:
        assert has_weights, f"{name} is declared parametric but has no trainable weights"
    elif stride == 1:  # a strided parameter-free op may carry a FactorizedReduce
        assert not has_weights, f"{name} is declared parameter-free but has trainable weights at stride 1"
