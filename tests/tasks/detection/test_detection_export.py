"""Detection bundles in the hub: a ``preprocessing`` block in config.json and the card, and
ONNX / TorchScript export of ``(boxes, scores)`` whose NMS-ed detections equal ``Detector.predict``'s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms

from tasks.detection.hub import DetectionHub
from tasks.detection.model import DenseDetector, Detector, resample
from tasks.detection.space import DetectionSpace
from zoo.hub.__main__ import main
from zoo.hub.bundle import load_bundle, save_bundle
from zoo.hub.facts import hub_facts

TILE = 64  # the bundle's recorded training crop size (a multiple of the coarsest stride, 32)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A task=detection bundle as a run writes it, with weights that give spread-out scores and real boxes."""
    from zoo.models import create_model

    g = DetectionSpace("both").sample(np.random.default_rng(5))
    args = {
        "arch": g.to_json(),
        "num_classes": 3,
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
    with torch.no_grad():
        model.train()
        model(torch.rand(4, 3, TILE, TILE))  # non-default BN statistics
        for conv in (model.head.cls_logits, model.head.box_pred, model.head.centerness):
            conv.weight.normal_(0, 0.3)
    model.eval()
    d = tmp_path_factory.mktemp("det") / "bundle"
    save_bundle(
        d,
        model,
        {
            "task": "detection",
            "model": args,
            "labels": ["tree", "car", "roof"],
            "data": {"name": "trees", "tile_size": TILE, "scale": 1.0, "in_chans": 3},
            "search": {"strategy": "random", "space": "detection"},
            "license": "Apache-2.0",
        },
    )
    return d


def _nms(
    boxes: torch.Tensor, scores: torch.Tensor, thresh: float = 0.05, iou: float = 0.6, max_det: int = 100, pre_nms: int = 1000
) -> dict[str, torch.Tensor]:
    """What an ONNX consumer runs on one image's exported (P, 4) boxes and (P, K) scores."""
    K = scores.shape[1]
    flat = scores.flatten()
    keep = torch.nonzero(flat > thresh).squeeze(1)
    if keep.numel() > pre_nms:
        keep = keep[flat[keep].topk(pre_nms).indices]
    b, s, labels = boxes[keep // K], flat[keep], keep % K
    valid = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    b, s, labels = b[valid], s[valid], labels[valid]
    kept = batched_nms(b, s, labels, iou)[:max_det]
    return {"boxes": b[kept], "scores": s[kept], "labels": labels[kept]}


def _same_detections(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert len(want["scores"]) > 5  # the comparison means something
    assert torch.equal(got["labels"], want["labels"])
    torch.testing.assert_close(got["scores"], want["scores"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-3, rtol=1e-5)


def test_bundle_and_card_carry_detection_preprocessing(bundle: Path, tmp_path: Path) -> None:
    cfg = json.loads((bundle / "config.json").read_text())
    pre = cfg["preprocessing"]
    assert pre["input_size"] == [3, TILE, TILE] and pre["color"] == "rgb"
    assert pre["mean"] == [0.4, 0.45, 0.5] and pre["std"] == [0.2, 0.25, 0.3] and pre["normalization"].startswith("inside the model")
    assert "multiples of 32" in pre["resize"] and "boxes (N, P, 4)" in pre["outputs"] and "NMS" in pre["postprocessing"]
    card = (bundle / "README.md").read_text()
    assert "## Preprocessing" in card and f"- input_size: [3, {TILE}, {TILE}]" in card and "--input-size H W" in card

    # a bundle written before detection had an adapter (no preprocessing) gets one when pushed
    from zoo.hub.publish import push

    old = tmp_path / "old"
    old.mkdir()
    (old / "model.safetensors").write_bytes((bundle / "model.safetensors").read_bytes())
    (old / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "preprocessing"}))
    entry, _ = push(str(old), str(tmp_path / "served"), name="det-tiny")
    assert entry["preprocessing"]["input_size"] == [3, TILE, TILE]
    assert "## Preprocessing" in (tmp_path / "served" / "det-tiny" / "README.md").read_text()


def test_input_size_falls_back_to_the_run_config_then_256() -> None:
    hub = hub_facts("detection")
    assert isinstance(hub, DetectionHub) and hub.output_names() == ["boxes", "scores"]
    model = {"in_chans": 3}
    assert hub.preprocessing({"model": model, "run_config": {"data": {"tile_size": 128}}})["input_size"] == [3, 128, 128]
    assert hub.preprocessing({"model": model})["input_size"] == [3, 256, 256]
    assert hub.preprocessing({"model": model, "data": {"tile_size": 96, "scale": 0.5}})["resize"].startswith("rescale images by 0.5")


def test_exact_ratio_pooling_equals_adaptive_pooling() -> None:
    x = torch.randn(2, 4, 32, 24)
    torch.testing.assert_close(resample(x, (8, 6)), F.adaptive_max_pool2d(x, (8, 6)), rtol=0, atol=0)
    torch.testing.assert_close(resample(x, (5, 7)), F.adaptive_max_pool2d(x, (5, 7)), rtol=0, atol=0)


@pytest.mark.requires("onnx", "onnxruntime")
def test_onnx_export_matches_pytorch_and_decodes_like_predict(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime as ort

    out = tmp_path / "det.onnx"
    assert main(["export", str(bundle), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    P = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32 on a 64 x 64 input
    assert f"outputs boxes [2, {P}, 4], scores [2, {P}, 3]" in printed and "check ok" in printed

    model, _ = load_bundle(bundle)
    assert isinstance(model, Detector)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["boxes", "scores"]
    x = torch.rand(5, 3, TILE, TILE, generator=torch.Generator().manual_seed(3))  # a batch size the export never saw
    boxes, scores = (torch.from_numpy(a) for a in sess.run(None, {"input": x.numpy()}))
    with torch.no_grad():
        ref_boxes, ref_scores = DenseDetector(model)(x)
    torch.testing.assert_close(boxes, ref_boxes, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=1e-5)
    assert float(boxes.min()) >= 0 and float(boxes.max()) <= TILE  # clipped to the image
    for i, want in enumerate(model.predict(x)):
        _same_detections(_nms(boxes[i], scores[i]), want)
    with pytest.raises(Exception, match="(?i)dimension"):  # the spatial size is fixed at export
        sess.run(None, {"input": torch.rand(1, 3, 2 * TILE, TILE).numpy()})


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_export_at_another_size_decodes_like_predict(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "det.pt"
    assert main(["export", str(bundle), "--format", "torchscript", "--out", str(out), "--input-size", "96", "128"]) == 0
    assert "input [2, 3, 96, 128]" in capsys.readouterr().out
    model, _ = load_bundle(bundle)
    x = torch.rand(3, 3, 96, 128, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        boxes, scores = torch.jit.load(str(out))(x)
        ref_boxes, ref_scores = DenseDetector(model)(x)
    torch.testing.assert_close(boxes, ref_boxes, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=1e-5)
    for i, want in enumerate(model.predict(x)):
        _same_detections(_nms(boxes[i], scores[i]), want)


def test_export_size_not_a_multiple_of_the_stride_is_one_line(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(bundle), "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--input-size", "75", "61"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo.hub: error: input size 75x61 is not a multiple of 32") and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()
