"""The MMDetection hand-off: the registered modules work as plain modules; without mmdet one clear line."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from zoo.hub.mmdet_adapter import INSTALL_HINT, ZooCellBackbone, ZooNasFpnNeck, backbone_channels, register_mmdet
from zoo.space.detection_space import DetectionSpace


def test_backbone_and_neck_modules_from_a_genotype_file(tmp_path) -> None:
    g = DetectionSpace("both").sample(np.random.default_rng(2))
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(g.to_json()))
    backbone = ZooCellBackbone(str(path), init_channels=8, layers=3)
    chans = backbone_channels(str(path), init_channels=8, layers=3)
    neck = ZooNasFpnNeck(str(path), in_channels=chans, out_channels=16)
    feats = backbone(torch.rand(1, 3, 75, 61))
    assert [f.shape[1] for f in feats] == chans
    out = neck(feats)
    assert [tuple(o.shape[-2:]) for o in out] == [(10, 8), (5, 4), (3, 2)] and all(o.shape[1] == 16 for o in out)
    assert ZooCellBackbone("darts_v2", init_channels=8, layers=3)(torch.rand(1, 3, 32, 32))[0].shape[-1] == 4


@pytest.mark.skipif(importlib.util.find_spec("mmdet") is not None, reason="mmdet is installed")
def test_without_mmdet_register_says_what_to_install() -> None:
    with pytest.raises(ImportError) as e:
        register_mmdet()
    assert str(e.value) == INSTALL_HINT and "scripts/install_mmdet.sh" in str(e.value)


@pytest.mark.skipif(importlib.util.find_spec("mmdet") is None, reason="needs mmdet (scripts/install_mmdet.sh)")
def test_mmdet_builds_the_registered_modules() -> None:
    models = register_mmdet()
    backbone = models.build({"type": "ZooCellBackbone", "genotype": "darts_v2", "init_channels": 8, "layers": 3})
    assert len(backbone(torch.rand(1, 3, 64, 64))) == 3
