"""The Auto-DeepLab space: path decoding (Viterbi), the decision vector, the discrete network's output size,
and the supernet computing the discrete network of a path when its path weights are one-hot."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from tasks.segmentation.model import SegmentationNet, create_segmenter, path_cell
from tasks.segmentation.space import AUTODEEPLAB, LEVELS, SegmentationGenotype, SegmentationSpace, cell_genotype, check_path, moves_to_path
from tasks.segmentation.supernet import PathSuperNet, levels_at, path_mask, viterbi
from zoo.space.genotype import GenotypeError, genotype_from_json
from zoo.space.supernet import SearchCell, edge_index

pytestmark = pytest.mark.usefixtures("one_thread")


def _valid(path: tuple[int, ...]) -> bool:
    prev = 0
    for lv in path:
        if not (0 <= lv < LEVELS and abs(lv - prev) <= 1):
            return False
        prev = lv
    return True


def _random_weights(rng: np.random.Generator, layers: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-softmax transition weights over the sources that exist (-inf elsewhere), as the supernet makes them, and log end weights."""
    mask = path_mask(layers)
    logits = torch.from_numpy(rng.normal(0, scale, (layers, LEVELS, 3))).masked_fill(~mask, float("-inf"))
    T = torch.log_softmax(logits, -1).masked_fill(~mask, float("-inf"))
    end_mask = torch.zeros(LEVELS, dtype=torch.bool)
    end_mask[levels_at(layers - 1)] = True
    E = torch.log_softmax(torch.from_numpy(rng.normal(0, scale, LEVELS)).masked_fill(~end_mask, float("-inf")), 0)
    return T, E


@functools.cache
def _sources(layers: int) -> np.ndarray:
    """(layers, LEVELS): the number of sources of each node (``path_mask`` summed over its 3 moves)."""
    return path_mask(layers).sum(-1).numpy()


def _score(path: tuple[int, ...], T: torch.Tensor, E: torch.Tensor) -> float:
    """The Viterbi objective by brute force: the sum of log(weight x number of sources) along the path
    (read from numpy views of the same float64 tensors: thousands of paths are scored per trial)."""
    sources, Tn, En = _sources(len(path)), T.numpy(), E.numpy()
    total, prev = 0.0, 0
    for l, lv in enumerate(path):
        n_in = int(sources[l, lv])
        total += float(Tn[l, lv, prev - lv + 1]) + math.log(n_in)
        prev = lv
    return total + float(En[path[-1]]) + math.log(len(levels_at(len(path) - 1)))


def test_viterbi_finds_the_best_valid_path_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    for trial in range(150):
        layers = int(rng.integers(1, 7))
        T, E = _random_weights(rng, layers, scale=float(rng.choice([0.1, 1.0, 5.0, 60.0, 1e4])))
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


class _SearchCell(nn.Module):
    """A textbook DARTS search cell (one module per op per edge) without input preprocessing."""

    def __init__(self, steps: int, C: int, primitives: list[str]) -> None:
        super().__init__()
        self.cell = SearchCell(steps, steps, C, C, C, False, False, primitives)
        self.cell.preprocess0, self.cell.preprocess1 = nn.Identity(), nn.Identity()

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.cell(s0, s1, weights)


def test_one_hot_cell_and_path_weights_compute_the_derived_discrete_network() -> None:
    """Search cells as well as path: with alpha one-hot on the genotype's edges (every other edge on
    ``none``) and one-hot path weights, the supernet derives that genotype and computes its network."""
    path = (0, 1, 1, 0)
    space = SegmentationSpace(steps=3, layers=len(path))
    prims = list(space.primitives)
    normal = (("sep_conv_3x3", 0), ("dil_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 2), ("dil_conv_5x5", 0), ("sep_conv_3x3", 3))
    g = SegmentationGenotype(cell_genotype(normal), path)
    args = dict(num_classes=2, init_channels=4, in_chans=1, aspp_channels=8, decoder_channels=8, mean=[0.4], std=[0.3])
    torch.manual_seed(1)
    sup = PathSuperNet(space, make_cell=lambda C: _SearchCell(3, C, prims), **args)  # type: ignore[arg-type]
    _one_hot_path(sup, path)
    with torch.no_grad():
        alpha = torch.full_like(sup.alpha, -1e4)
        alpha[:, prims.index("none")] = 1e4
        for k, (op, src) in enumerate(normal):
            e = edge_index(k // 2, src)
            alpha[e] = -1e4
            alpha[e, prims.index(op)] = 1e4
        sup.alpha.copy_(alpha)
    assert sup.genotype() == g
    sup.train()
    sup(torch.rand(4, 1, 32, 32))  # BN statistics away from their initial values
    net = SegmentationNet(g, **args)  # type: ignore[arg-type]
    sup_state, state = sup.state_dict(), {}
    for k in net.state_dict():
        parts = k.split(".")
        if parts[0] == "cells":
            l, op_k, rest = int(parts[1]), int(parts[3]), ".".join(parts[4:])
            op, src = normal[op_k]
            src_key = f"cells.{l}_{path[l]}.cell._ops.{edge_index(op_k // 2, src)}._ops.{prims.index(op)}.{rest}"
        elif parts[0] in ("pre0", "pre1"):
            l = int(parts[1])
            prev = (path[l - 1] if l >= 1 else 0) if parts[0] == "pre1" else (path[l - 2] if l >= 2 else 0)
            src_key = f"{parts[0]}.{l}_{path[l]}_{prev}.{'.'.join(parts[2:])}"
        elif parts[0] == "aspp":
            src_key = f"heads.{path[-1]}.{'.'.join(parts[1:])}"
        else:
            src_key = k
        if src_key in sup_state:
            state[k] = sup_state[src_key]
    missing = [k for k in net.state_dict() if k not in state and not k.endswith((".weight", ".bias"))]
    assert not missing, missing
    net.load_state_dict(state, strict=False)  # BN weight 1, bias 0 where the supernet's BNs have no affine parameters
    x = torch.rand(2, 1, 35, 29)
    for training in (True, False):
        sup.train(training)
        net.train(training)
        with torch.no_grad():
            a, b = sup(x), net(x)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (training, (a - b).abs().max())


def test_pc_darts_supernet_trains_its_edge_weights_and_decodes() -> None:
    space = SegmentationSpace(steps=2, layers=3)
    net = PathSuperNet(
        space, num_classes=2, init_channels=4, in_chans=1, aspp_channels=8, decoder_channels=8, kind="pc_darts", partial_channels=2
    )
    assert len(net.arch_parameters()) == 4 and net.edge_beta is not None
    y = net(torch.rand(2, 1, 32, 32))
    assert y.shape == (2, 2, 32, 32)
    y.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in net.arch_parameters())
    g = net.genotype()
    assert space.decode(space.encode(g)) == g
    with pytest.raises(ValueError, match="partial_channels=3 must divide"):
        PathSuperNet(space, num_classes=2, init_channels=4, in_chans=1, kind="pc_darts", partial_channels=3)


def test_published_autodeeplab_builds_through_create_model() -> None:
    import zoo
    from tasks.segmentation.space import AUTODEEPLAB

    model = zoo.create_model("autodeeplab", num_classes=3, init_channels=4, stem_channels=8, aspp_channels=8, decoder_channels=8)
    assert isinstance(model, SegmentationNet) and model.genotype == AUTODEEPLAB
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    assert [c.multiplier for c in model.cells] == [5] * 12


def test_genotype_png_draws_cell_and_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from zoo.plots import plot_genotype

    plot_genotype(AUTODEEPLAB, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (990, 825)  # the cell-and-path figure (9 x 7.5 in at 110 dpi), not the one-line text fallback
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    blue = np.abs(pixels.astype(int) - [31, 119, 180]).sum(1) < 30  # the path's colour (tab:blue)
    assert blue.mean() > 0.002
