"""The Auto-DeepLab space: path decoding (Viterbi), the decision vector, the discrete network's output size,
and the supernet computing the discrete network of a path when its path weights are one-hot."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from tasks.segmentation.model import SegmentationNet, create_segmenter, path_cell
from tasks.segmentation.space import AUTODEEPLAB, LEVELS, SegmentationGenotype, SegmentationSpace, check_path, moves_to_path
from tasks.segmentation.supernet import PathSuperNet, levels_at, path_mask, viterbi
from zoo.space.genotype import GenotypeError, genotype_from_json

pytestmark = pytest.mark.usefixtures("one_thread")


def _valid(path: tuple[int, ...]) -> bool:
    prev = 0
    for lv in path:
        if not (0 <= lv < LEVELS and abs(lv - prev) <= 1):
            return False
        prev = lv
    return True


def _random_weights(rng: np.random.Generator, layers: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax-normalised transition weights over the sources that exist (as the supernet makes them) and end weights."""
    mask = path_mask(layers)
    logits = torch.from_numpy(rng.normal(0, scale, (layers, LEVELS, 3))).masked_fill(~mask, float("-inf"))
    T = torch.nan_to_num(torch.softmax(logits, -1), nan=0.0)
    end_mask = torch.zeros(LEVELS, dtype=torch.bool)
    end_mask[levels_at(layers - 1)] = True
    E = torch.softmax(torch.from_numpy(rng.normal(0, scale, LEVELS)).masked_fill(~end_mask, float("-inf")), 0)
    return T, E


def _score(path: tuple[int, ...], T: torch.Tensor, E: torch.Tensor) -> float:
    """The Viterbi objective by brute force: sum of log(weight x number of sources) along the path."""
    total, prev = 0.0, 0
    for l, lv in enumerate(path):
        n_in = int(path_mask(len(path))[l, lv].sum())
        w = float(T[l, lv, prev - lv + 1]) * n_in
        total += math.log(w) if w > 0 else -1e300
        prev = lv
    n_end = len(levels_at(len(path) - 1))
    return total + (math.log(float(E[path[-1]]) * n_end) if float(E[path[-1]]) > 0 else -1e300)


def test_viterbi_finds_the_best_valid_path_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    for trial in range(150):
        layers = int(rng.integers(1, 7))
        T, E = _random_weights(rng, layers, scale=float(rng.choice([0.1, 1.0, 5.0, 60.0])))
        path = viterbi(T, E)
        assert len(path) == layers and _valid(path), (trial, path)
        candidates = [p for p in itertools.product(range(LEVELS), repeat=layers) if _valid(p)]
        best = max(_score(p, T, E) for p in candidates)
        assert _score(path, T, E) == pytest.approx(best, rel=1e-9, abs=1e-9), (trial, path)


def test_uniform_weights_keep_the_finest_level_and_one_hot_weights_give_their_path() -> None:
    layers = 8
    T, E = _random_weights(np.random.default_rng(1), layers, scale=0.0)
    assert viterbi(T, E) == (0,) * layers  # every path scores the same: ties go to the finer level
    target = (1, 2, 3, 3, 2, 1, 1, 0)
    net = PathSuperNet(SegmentationSpace(steps=2, layers=layers), num_classes=2, init_channels=4, in_chans=1)
    _one_hot_path(net, target)
    assert net.genotype().path == target


def test_supernet_decodes_a_valid_path_for_any_weights() -> None:
    net = PathSuperNet(SegmentationSpace(steps=2, layers=6), num_classes=2, init_channels=4, in_chans=1)
    gen = torch.Generator().manual_seed(0)
    for scale in (0.0, 1e-3, 1.0, 30.0, 1e4):
        for _ in range(20):
            with torch.no_grad():
                net.path_beta.copy_(scale * torch.randn(net.path_beta.shape, generator=gen))
                net.end_beta.copy_(scale * torch.randn(net.end_beta.shape, generator=gen))
            g = net.genotype()
            assert _valid(g.path) and len(g.path) == 6
            assert net.space.decode(net.space.encode(g)) == g


def test_space_round_trips_and_rejects_bad_paths() -> None:
    space = SegmentationSpace(steps=3, layers=6)
    rng = np.random.default_rng(0)
    for _ in range(300):
        g = space.sample(rng)
        assert _valid(g.path)
        assert space.decode(space.encode(g)) == g
        assert genotype_from_json(g.to_json()) == g
    big = SegmentationSpace(steps=5, layers=12)
    assert big.decode(big.encode(AUTODEEPLAB)) == AUTODEEPLAB
    assert moves_to_path([0, 0, 2, 2, 2, 2, 2, 0]) == (0, 0, 1, 2, 3, 3, 3, 2)
    with pytest.raises(GenotypeError, match="layer 1 jumps from level 0 to 2"):
        check_path([0, 2])
    with pytest.raises(GenotypeError, match="layer 0 has level 4"):
        check_path([4])
    with pytest.raises(GenotypeError, match=r"space.layers=12"):
        space.encode(SegmentationGenotype(space.sample(rng).cell, AUTODEEPLAB.path))


@pytest.mark.parametrize("size", [(64, 64), (33, 47), (17, 90)])
def test_outputs_match_the_input_size(size: tuple[int, int]) -> None:
    g = SegmentationSpace(steps=2, layers=5).sample(np.random.default_rng(3))
    g = SegmentationGenotype(g.cell, (0, 1, 2, 3, 2))
    net = create_segmenter(g, num_classes=3, init_channels=4, in_chans=1, aspp_channels=8, decoder_channels=8)
    sup = PathSuperNet(
        SegmentationSpace(steps=2, layers=5), num_classes=3, init_channels=4, in_chans=1, aspp_channels=8, decoder_channels=8
    )
    x = torch.rand(2, 1, *size)
    assert net(x).shape == (2, 3, *size)
    assert sup(x).shape == (2, 3, *size)


def _one_hot_path(net: PathSuperNet, path: tuple[int, ...]) -> None:
    """Path weights one-hot on ``path`` (every other node: one-hot on some source that exists)."""
    with torch.no_grad():
        beta = torch.full_like(net.path_beta, -1e4)
        mask = net.mask
        for l in range(net.layers):
            for s in levels_at(l):
                d = next(d for d in range(3) if mask[l, s, d])
                beta[l, s, d] = 1e4
            prev = path[l - 1] if l > 0 else 0
            beta[l, path[l]] = -1e4
            beta[l, path[l], prev - path[l] + 1] = 1e4
        net.path_beta.copy_(beta)
        end = torch.full_like(net.end_beta, -1e4)
        end[path[-1]] = 1e4
        net.end_beta.copy_(end)


class _FixedCell(nn.Module):
    """A discrete cell with the supernet cell's signature (the cell weights are ignored)."""

    def __init__(self, genotype: SegmentationGenotype, C: int) -> None:
        super().__init__()
        self.cell = path_cell(genotype, C)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, _weights: torch.Tensor) -> torch.Tensor:
        return self.cell(s0, s1)


@pytest.mark.parametrize("path", [(0, 1, 2, 3, 3, 2), (1, 1, 0, 0, 1, 2), (0, 0, 0, 0, 0, 0)])
def test_supernet_with_one_hot_path_weights_computes_the_discrete_network(path: tuple[int, ...]) -> None:
    space = SegmentationSpace(steps=2, layers=len(path))
    g = SegmentationGenotype(space.sample(np.random.default_rng(7)).cell, path)
    args = dict(num_classes=3, init_channels=4, in_chans=1, aspp_channels=8, decoder_channels=8, mean=[0.3], std=[0.2])
    torch.manual_seed(0)
    sup = PathSuperNet(space, make_cell=lambda C: _FixedCell(g, C), **args)  # type: ignore[arg-type]
    _one_hot_path(sup, path)
    sup.train()
    sup(torch.rand(4, 1, 40, 40))  # move the BN statistics away from their initial values
    net = SegmentationNet(g, **args)  # type: ignore[arg-type]
    state = {}
    sup_state = sup.state_dict()
    for k in net.state_dict():
        if k.startswith("cells."):
            l, rest = k.split(".", 2)[1:]
            src = f"cells.{l}_{path[int(l)]}.cell.{rest}"
        elif k.startswith(("pre0.", "pre1.")):
            kind, l, rest = k.split(".", 2)
            l_ = int(l)
            prev = (path[l_ - 1] if l_ >= 1 else 0) if kind == "pre1" else (path[l_ - 2] if l_ >= 2 else 0)
            src = f"{kind}.{l}_{path[l_]}_{prev}.{rest}"
        elif k.startswith("aspp."):
            src = f"heads.{path[-1]}.{k[len('aspp.') :]}"
        else:
            src = k
        if src in sup_state:
            state[k] = sup_state[src]
    missing = [k for k in net.state_dict() if k not in state and not k.endswith((".weight", ".bias"))]
    assert not missing, missing
    # the supernet's resampling BNs have no affine parameters: the discrete ones keep weight 1, bias 0
    net.load_state_dict(state, strict=False)
    x = torch.rand(3, 1, 37, 45)
    for mode in ("train", "eval"):
        sup.train(mode == "train")
        net.train(mode == "train")
        with torch.no_grad():
            a, b = sup(x), net(x)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (mode, (a - b).abs().max())
    # and with other path weights it computes something else
    sup.train()
    net.train()
    with torch.no_grad():
        b = net(x)
        sup.path_beta.zero_()
        a = sup(x)
    assert (a - b).abs().max() > 1e-2 * b.abs().max()
