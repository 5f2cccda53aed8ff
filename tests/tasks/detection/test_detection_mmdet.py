"""The MMDetection hand-off: a searched backbone and neck, named in an mmdet config, train under
mmdet's own FCOS and RetinaNet heads; with a bundle they carry the searched weights exactly.

`make test` installs mmdet (scripts/install_mmdet.sh, cached wheel) and sets ZOO_REQUIRE_OPTIONAL=1,
so in CI these tests run rather than skip (the ``requires`` marker, tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.detection.integrations.mmdet import INSTALL_HINT, ZooCellBackbone, ZooNasFpnNeck, backbone_channels, mmdet_model_config
from tasks.detection.space import DetectionSpace

ROOT = Path(__file__).resolve().parents[3]
needs_mmdet = pytest.mark.requires("mmdet", "mmcv.ops")


def test_backbone_and_neck_modules_from_a_genotype_file(tmp_path: Path) -> None:
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


def _bundle(tmp_path: Path, num_classes: int = 1) -> tuple[Path, torch.nn.Module]:
    """A task=detection bundle, as a search run writes it (searched genotype, sizes, weights)."""
    from zoo.hub.bundle import save_bundle
    from zoo.models import create_model

    g = DetectionSpace("both").sample(np.random.default_rng(5))
    args = {
        "arch": g.to_json(),
        "num_classes": num_classes,
        "init_channels": 8,
        "layers": 3,
        "neck_channels": 16,
        "head_convs": 1,
        "in_chans": 3,
        "mean": [0.4, 0.45, 0.5],
        "std": [0.2, 0.25, 0.3],
    }
    torch.manual_seed(0)
    model = create_model(**args)
    with torch.no_grad():  # give the BN statistics and weights non-default values
        model.train()
        model(torch.rand(4, 3, 64, 64))
    model.eval()
    d = tmp_path / "bundle"
    save_bundle(d, model, {"task": "detection", "model": args, "labels": [f"c{i}" for i in range(num_classes)]})
    return d, model


def test_bundle_modules_carry_the_searched_weights(tmp_path: Path) -> None:
    d, model = _bundle(tmp_path)
    backbone, neck = ZooCellBackbone(bundle=str(d)).eval(), ZooNasFpnNeck(bundle=str(d)).eval()
    x = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        ours = model.features(x)
        theirs = neck(backbone((x - model.mean) / model.std))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs genotype= .* or bundle="):
        ZooCellBackbone()
    with pytest.raises(ValueError, match="does not exist"):
        ZooNasFpnNeck(bundle=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="head='yolo' is invalid; allowed: fcos, retinanet"):
        mmdet_model_config(d, head="yolo")


def test_without_mmdet_register_says_what_to_install() -> None:
    """mmdet hidden from the import system (as on a machine without it): one line naming the install script."""
    code = (
        "import sys; sys.modules['mmdet'] = None\n"
        "from tasks.detection.integrations.mmdet import register_mmdet\n"
        "try:\n    register_mmdet()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == INSTALL_HINT and "scripts/install_mmdet.sh" in out.stdout


def _rectangles(n: int, size: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """BGR uint8 images (as mmdet loads them) with 1-2 bright rectangles each, and their xyxy boxes."""
    rng = np.random.default_rng(seed)
    images, boxes = [], []
    for _ in range(n):
        img = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        bs = []
        for _ in range(int(rng.integers(1, 3))):
            w, h = rng.integers(12, 28, size=2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            img[y0 : y0 + h, x0 : x0 + w] = (40, 200, 230)
            bs.append([x0, y0, x0 + w, y0 + h])
        images.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        boxes.append(torch.tensor(bs, dtype=torch.float32))
    return images, boxes


def _samples(images: list[torch.Tensor], boxes: list[torch.Tensor]) -> list:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    out = []
    for img, b in zip(images, boxes):
        s = DetDataSample()
        H, W = img.shape[-2:]
        s.set_metainfo({"img_shape": (H, W), "ori_shape": (H, W), "scale_factor": (1.0, 1.0)})
        s.gt_instances = InstanceData(bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
        out.append(s)
    return out


def _recall50(results: list, boxes: list[torch.Tensor], top: int = 5) -> float:
    from torchvision.ops import box_iou

    hit = total = 0
    for r, gt in zip(results, boxes):
        pred = r.pred_instances.bboxes[:top]
        total += len(gt)
        if len(pred):
            hit += int((box_iou(gt, pred).max(dim=1).values >= 0.5).sum())
    return hit / max(total, 1)


@needs_mmdet
@pytest.mark.parametrize("head", ["fcos", "retinanet"])
def test_mmdet_trains_the_searched_backbone_and_neck(tmp_path: Path, head: str, one_thread: None) -> None:
    from tasks.detection.integrations.mmdet import register_mmdet

    models = register_mmdet()
    d, _ = _bundle(tmp_path)
    cfg = mmdet_model_config(d, num_classes=1, head=head)
    assert cfg["backbone"]["type"] == "ZooCellBackbone" and cfg["neck"]["type"] == "ZooNasFpnNeck"
    from mmengine.config import ConfigDict

    torch.manual_seed(0)
    model = models.build(ConfigDict(cfg))  # as an mmdet config file holds it
    assert type(model.backbone) is ZooCellBackbone and type(model.neck) is ZooNasFpnNeck
    images, boxes = _rectangles(8, 96, seed=0)
    batch = {"inputs": images, "data_samples": _samples(images, boxes)}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    losses = []
    model.train()
    for _ in range(60):
        data = model.data_preprocessor(batch, True)
        loss, _ = model.parse_losses(model(**data, mode="loss"))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch, False), mode="predict")
    assert len(results) == 8
    recall = _recall50(results, boxes)
    assert recall >= 0.5, recall  # an untrained model finds almost none of these boxes
