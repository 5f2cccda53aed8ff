"""The PC-DARTS and single-path supernets compute what their papers define.

PC-DARTS: a plain per-edge transcription (textbook MixedOp on the first C/K channels, bypass of
the rest, max-pooled on stride-2 edges, concat, channel shuffle, softmax(beta)-weighted node sum)
gives the same outputs and gradients as the bundled PCSearchCell. Single path: one path of the
supernet is exactly the discrete network of that genotype.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.space.darts_space import DartsSpace
from zoo.space.network import CellNetwork
from zoo.space.ops import DARTS_OPS, FactorizedReduce, ReLUConvBN
from zoo.space.pc_supernet import PCSearchCell, PCSuperNet, channel_shuffle
from zoo.space.single_path import SinglePathSuperNet
from zoo.space.supernet import MixedOp, derive_edges, edge_index, num_edges

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


class ReferencePCCell(nn.Module):
    """PC-DARTS cell written edge by edge, as in the paper."""

    def __init__(self, steps: int, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool, K: int) -> None:
        super().__init__()
        self.steps, self.C, self.K = steps, C, K
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.strides = [2 if reduction and j < 2 else 1 for i in range(steps) for j in range(2 + i)]
        self.ops = nn.ModuleList(MixedOp(C // K, s, DARTS_OPS) for s in self.strides)

    def edge(self, k: int, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        Cp = self.C // self.K
        y = self.ops[k](h[:, :Cp], w)
        if self.K == 1:
            return y
        rest = h[:, Cp:] if self.strides[k] == 1 else F.max_pool2d(h[:, Cp:], 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([y, rest], 1), self.K)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, alpha_w: torch.Tensor, beta_w: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            states.append(
                sum(beta_w[edge_index(i, j)] * self.edge(edge_index(i, j), h, alpha_w[edge_index(i, j)]) for j, h in enumerate(states))
            )  # type: ignore[arg-type]
        return torch.cat(states[2:], 1)


def node_softmax(beta: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.cat([torch.softmax(beta[edge_index(i, 0) : edge_index(i + 1, 0)], 0) for i in range(steps)])


@pytest.mark.parametrize(
    "reduction,reduction_prev,K,size", [(False, False, 2, 8), (True, False, 4, 9), (False, True, 2, 7), (True, True, 1, 8)]
)
def test_pc_cell_matches_the_per_edge_transcription(reduction: bool, reduction_prev: bool, K: int, size: int) -> None:
    torch.manual_seed(0)
    steps, C = 4, 8
    ref = ReferencePCCell(steps, 6, 5, C, reduction, reduction_prev, K).to(DT)
    fast = PCSearchCell(steps, steps, 6, 5, C, reduction, reduction_prev, DARTS_OPS, partial_channels=K).to(DT)
    fast.load_mixed_ops(list(ref.ops), ref.preprocess0, ref.preprocess1)
    s0 = torch.randn(3, 6, 2 * size if reduction_prev else size, 2 * size if reduction_prev else size, dtype=DT, requires_grad=True)
    s1 = torch.randn(3, 5, size, size, dtype=DT, requires_grad=True)
    alpha = torch.randn(num_edges(steps), len(DARTS_OPS), dtype=DT, requires_grad=True)
    beta = torch.randn(num_edges(steps), dtype=DT, requires_grad=True)
    a_w, b_w = torch.softmax(alpha, -1), node_softmax(beta, steps)
    out_ref = ref(s0, s1, a_w, b_w)
    out_fast = fast(s0, s1, b_w[:, None] * a_w)
    assert torch.allclose(out_ref, out_fast, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out_ref)
    grads_ref = torch.autograd.grad(out_ref, (s0, s1, alpha, beta), g, retain_graph=True)
    for a, b in zip(grads_ref, torch.autograd.grad(out_fast, (s0, s1, alpha, beta), g)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_pc_supernet_learns_beta_and_derives_from_alpha_times_beta() -> None:
    torch.manual_seed(0)
    net = PCSuperNet(num_classes=3, init_channels=8, layers=3, in_chans=1, partial_channels=4)
    assert len(net.arch_parameters()) == 4
    arch = {id(p) for p in net.arch_parameters()}
    assert all(id(p) not in arch for p in net.weight_parameters())
    loss = F.cross_entropy(net(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert net.beta_normal.grad.abs().max() > 0 and net.beta_reduce.grad.abs().max() > 0
    with torch.no_grad():
        net.beta_normal.normal_()
        net.alpha_normal.normal_()
    w = torch.softmax(net.alpha_normal, -1) * node_softmax(net.beta_normal, 4)[:, None]
    assert net.genotype().normal == derive_edges(w.detach(), 4, DARTS_OPS)
    space = DartsSpace()
    assert space.decode(space.encode(net.genotype())) == net.genotype()


def test_pc_supernet_rejects_partial_channels_that_do_not_divide() -> None:
    with pytest.raises(ValueError, match="partial_channels=3"):
        PCSuperNet(num_classes=3, init_channels=8, layers=3, partial_channels=3)


@pytest.mark.parametrize("stem,size", [("cifar", 8), ("cifar", 7), ("imagenet", 33)])
def test_a_single_path_is_the_discrete_network(stem: str, size: int) -> None:
    space = DartsSpace()
    genotype = space.sample(np.random.default_rng(3))
    torch.manual_seed(0)
    single = SinglePathSuperNet(num_classes=4, init_channels=8, layers=4, in_chans=3, stem=stem).to(DT)
    single.set_path(genotype)
    discrete = CellNetwork(genotype, num_classes=4, init_channels=8, layers=4, in_chans=3, stem=stem).to(DT)
    state = {k: v for k, v in single.state_dict().items() if not k.startswith("cells.")}
    discrete.load_state_dict(state, strict=False)
    for d_cell, s_cell in zip(discrete.cells, single.cells):
        d_cell.preprocess0.load_state_dict(s_cell.preprocess0.state_dict(), strict=False)
        d_cell.preprocess1.load_state_dict(s_cell.preprocess1.state_dict(), strict=False)
        edges = genotype.reduce if s_cell.reduction else genotype.normal
        for k, (name, src) in enumerate(edges):
            d_cell.ops[k].load_state_dict(s_cell.edges[edge_index(k // 2, src)][name].state_dict(), strict=False)
    x = torch.randn(3, 3, size, size, dtype=DT)
    single.train()
    discrete.train()  # affine BN at its initial (1, 0) equals affine=False BN
    assert torch.allclose(single(x), discrete(x), rtol=1e-10, atol=1e-10)
    assert [f.shape for f in single.forward_features(x)] == [f.shape for f in discrete.forward_features(x)]
    assert single.genotype() == genotype and single.arch_parameters() == []


def test_single_path_trains_only_the_sampled_ops() -> None:
    space = DartsSpace()
    genotype = space.sample(np.random.default_rng(0))
    net = SinglePathSuperNet(num_classes=3, init_channels=4, layers=3, in_chans=1)
    net.set_path(genotype)
    F.cross_entropy(net(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    cell = net.cells[0]
    used = {(edge_index(k // 2, src), name) for k, (name, src) in enumerate(genotype.normal)}
    for e, ops in enumerate(cell.edges):
        for name, op in ops.items():
            has_grad = any(p.grad is not None for p in op.parameters())
            if any(True for _ in op.parameters()):
                assert has_grad == ((e, name) in used), (e, name)
    with pytest.raises(ValueError, match="multiplier=3 must equal steps=4"):
        SinglePathSuperNet(multiplier=3)
    with pytest.raises(RuntimeError, match="set_path"):
        SinglePathSuperNet(num_classes=3, init_channels=4, layers=3, in_chans=1)(torch.randn(1, 1, 8, 8))
