"""The NAS-FPN neck space, its modules on odd sizes, the composite detection space and model rebuilding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.detection.model import Neck
from tasks.detection.space import NECK_OPS, DetectionGenotype, DetectionSpace, NasFpnSpace, NeckGenotype, fpn_neck_genotype
from tasks.detection.supernet import MixedNeck
from zoo.space.base import SPACES
from zoo.space.genotype import GenotypeError, genotype_from_json

ODD_SIZES = [(13, 11), (7, 6), (4, 3)]  # what a stride-8 backbone gives a 101x85 image


def _feats(chans=(8, 16, 32), sizes=ODD_SIZES, batch=2):
    torch.manual_seed(0)
    return [torch.randn(batch, c, *s) for c, s in zip(chans, sizes)]


@pytest.mark.parametrize("op", NECK_OPS)
@pytest.mark.parametrize("max_level", [5, 7])
def test_neck_cells_of_every_op_shape_check_on_odd_sizes(op: str, max_level: int) -> None:
    space = NasFpnSpace(cells=max_level - 3 + 3, min_level=3, max_level=max_level, ops=[op])
    rng = np.random.default_rng(1)
    expected = ODD_SIZES + [(2, 2), (1, 1)][: max_level - 5]
    for _ in range(4):
        g = space.sample(rng)
        assert {c[3] for c in g.cells} == {op}
        out = Neck(g, [8, 16, 32], 12)(_feats())
        assert [tuple(o.shape) for o in out] == [(2, 12, *s) for s in expected]
        assert all(torch.isfinite(o).all() for o in out)


def test_every_level_can_be_resampled_to_every_other() -> None:
    # intermediate cells writing to each level, read by the outputs: all up/down resamplings of odd sizes
    cells = (
        (0, 2, 3, "sum"),
        (1, 3, 5, "global_attention"),
        (4, 0, 4, "sum"),
        (5, 2, 3, "global_attention"),
        (6, 3, 4, "sum"),
        (7, 5, 5, "sum"),
    )
    g = NeckGenotype(cells, 3, 5)
    out = Neck(g, [8, 16, 32], 6)(_feats())
    assert [tuple(o.shape[-2:]) for o in out] == ODD_SIZES


def test_mixed_neck_shapes_gradients_and_derived_genotype() -> None:
    neck = MixedNeck([8, 16, 32], 12, cells=5)
    out = neck(_feats())
    assert [tuple(o.shape) for o in out] == [(2, 12, *s) for s in ODD_SIZES]
    sum(o.square().mean() for o in out).backward()
    arch = neck.arch_parameters()
    assert len(arch) == 5 * 3 + 2  # in1, in2, op per cell; level for the 2 intermediate cells
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in arch)
    assert not any(id(p) in {id(a) for a in arch} for p in neck.weight_parameters())
    with torch.no_grad():
        neck.alpha[0][NECK_OPS.index("global_attention")] += 5.0
        neck.gamma[1][2] += 5.0  # cell 1 -> P5
        neck.beta1[4][6] += 5.0  # last cell reads cell 1 first
    g = neck.genotype()
    assert g.cells[0][3] == "global_attention" and g.cells[1][2] == 5 and g.cells[4][0] == 6
    assert NasFpnSpace(5).decode(NasFpnSpace(5).encode(g)) == g


def test_neck_space_round_trips_and_rejects_bad_genotypes() -> None:
    assert "nasfpn" not in SPACES, "the neck is a part of space=detection, not a space of its own"
    space = NasFpnSpace(cells=6)
    rng = np.random.default_rng(0)
    for _ in range(30):
        g = space.sample(rng)
        assert space.decode(space.encode(g)) == g
        assert genotype_from_json(g.to_json()) == g
        assert space.mutate(g, rng) != g
    fixed = fpn_neck_genotype(3, 5)
    assert [c[2] for c in fixed.cells[-3:]] == [3, 4, 5]
    with pytest.raises(GenotypeError, match=r"cells\[4\].level is 3.*must be 5"):
        NeckGenotype(((0, 1, 4, "sum"), (2, 3, 3, "sum"), (4, 0, 3, "sum"), (5, 1, 4, "sum"), (6, 2, 3, "sum")))
    with pytest.raises(GenotypeError, match=r"cells\[0\].op is 'concat'"):
        NeckGenotype(((0, 1, 3, "concat"), (3, 1, 4, "sum"), (4, 2, 5, "sum")))
    with pytest.raises(GenotypeError, match=r"reads pool entry 1 twice"):
        NeckGenotype(((1, 1, 3, "sum"), (3, 1, 4, "sum"), (4, 2, 5, "sum")))


@pytest.mark.parametrize("target,parts", [("both", 2), ("backbone", 1), ("neck", 1)])
def test_detection_space_concatenates_the_searched_parts(target: str, parts: int) -> None:
    space = DetectionSpace(target=target)
    n_backbone, n_neck = len(space.backbone_space.cardinalities()), len(space.neck_space.cardinalities())
    expect = {"both": n_backbone + n_neck, "backbone": n_backbone, "neck": n_neck}[target]
    assert len(space.cardinalities()) == expect == len(space.decision_names())
    assert sum(len(g) for g in space.groups()) == expect
    rng = np.random.default_rng(3)
    a, b = space.sample(rng), space.sample(rng)
    for g in (a, b, space.mutate(a, rng, 3), space.crossover(a, b, rng)):
        assert isinstance(g, DetectionGenotype)
        assert space.decode(space.encode(g)) == g
        assert genotype_from_json(g.to_json()) == g
        if target == "neck":
            assert g.backbone == space.fixed_backbone
        if target == "backbone":
            assert g.neck == space.fixed_neck
    with pytest.raises(ValueError, match="search.target='head' is invalid"):
        DetectionSpace(target="head")


def test_detector_rebuilds_from_its_model_config_and_bundle(tmp_path) -> None:
    from zoo.hub.bundle import load_bundle, save_bundle
    from zoo.models import create_model

    space = DetectionSpace("both")
    g = space.sample(np.random.default_rng(5))
    cfg = {
        "arch": g.to_json(),
        "num_classes": 2,
        "init_channels": 8,
        "layers": 3,
        "neck_channels": 16,
        "head_convs": 1,
        "in_chans": 3,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    torch.manual_seed(0)
    model = create_model(**cfg).eval()
    x = torch.rand(1, 3, 101, 85)
    out = model(x)
    assert out.cls.shape == (1, 13 * 11 + 7 * 6 + 4 * 3, 2) and out.reg.shape[-1] == 4
    save_bundle(tmp_path, model, {"task": "detection", "model": cfg, "labels": ["a", "b"], "metrics": {}})
    again, _ = load_bundle(tmp_path)
    assert torch.equal(again(x).cls, out.cls)
    dets = again.predict(x, score_thresh=0.0, max_det=7)[0]
    assert dets["boxes"].shape == (7, 4)  # score_thresh=0: every location is a candidate, so max_det is reached
    assert (dets["boxes"] >= 0).all() and (dets["boxes"][:, 2] >= dets["boxes"][:, 0]).all()
    assert (dets["boxes"][:, 2] <= 85).all() and (dets["boxes"][:, 3] <= 101).all()
