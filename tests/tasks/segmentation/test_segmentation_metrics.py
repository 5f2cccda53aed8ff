"""Segmentation metrics on hand-worked arrays (confusion matrix, IoU, mIoU, pixel accuracy) and the prediction drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.segmentation.data import SegImage
from tasks.segmentation.metrics import confusion, draw, scores

# 6 pixels, one ignored (255): (true, predicted) = (0,0) (0,1) (1,1) (1,1) (2,0); the ignored one predicts 2
TARGET = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 0, 2]])


def test_confusion_counts_by_hand() -> None:
    conf = confusion(PRED, TARGET, 3, 255)
    assert conf.dtype == np.int64
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # an out-of-range prediction on an ignored pixel is never counted
    pred = PRED.copy()
    pred[1, 2] = 99
    assert confusion(pred, TARGET, 3, 255).tolist() == conf.tolist()
    with pytest.raises(ValueError, match="class index 3"):
        confusion(np.where(PRED == 2, 3, PRED), np.where(TARGET == 255, 0, TARGET), 3, 255)
    with pytest.raises(ValueError, match="shape"):
        confusion(PRED[:, :2], TARGET, 3, 255)


def test_scores_by_hand() -> None:
    s = scores(confusion(PRED, TARGET, 3, 255), ["bg", "a", "b"])
    # IoU = tp / (row + column - tp): bg 1/(2+2-1), a 2/(2+3-2), b 0/(1+0-0)
    assert s["per_class_IoU"] == pytest.approx({"bg": 1 / 3, "a": 2 / 3, "b": 0.0})
    assert s["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert s["pixel_accuracy"] == pytest.approx(3 / 5)  # 5 counted pixels, 3 right


def test_absent_class_is_none_and_left_out_of_the_mean() -> None:
    s = scores(confusion(PRED, TARGET, 4, 255), ["bg", "a", "b", "never"])
    assert s["per_class_IoU"]["never"] is None
    assert s["mIoU"] == pytest.approx(1 / 3)
    # a class only predicted is present: IoU 0, counted in the mean
    target, pred = np.array([0, 0, 1, 1]), np.array([0, 3, 1, 1])
    s = scores(confusion(pred, target, 4, 255), ["bg", "a", "b", "c"])
    assert s["per_class_IoU"] == {"bg": 0.5, "a": 1.0, "b": None, "c": 0.0}
    assert s["mIoU"] == pytest.approx(0.5) and s["pixel_accuracy"] == 0.75
    empty = scores(confusion(pred, np.full(4, 255), 4, 255), ["bg", "a", "b", "c"])
    assert empty == {"mIoU": 0.0, "pixel_accuracy": 0.0, "per_class_IoU": {"bg": None, "a": None, "b": None, "c": None}}


def test_confusion_matches_a_pixel_loop() -> None:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 5, size=(17, 23))
    target[rng.random(target.shape) < 0.1] = 255
    pred = rng.integers(0, 5, size=(17, 23))
    loop = np.zeros((5, 5), np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):
        if t != 255:
            loop[t, p] += 1
    assert np.array_equal(confusion(pred, target, 5, 255), loop)


@pytest.mark.parametrize("chans", [1, 3])
def test_draw_writes_a_png_that_shows_the_prediction(tmp_path: Path, chans: int) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 60), np.int64)
    mask[5:20, 5:25], mask[25:35, 30:55] = 1, 2
    mask[0, :] = 255
    item = SegImage("x", rng.random((40, 60, chans)).astype(np.float32), mask)
    good, bad = np.where(mask == 255, 0, mask), np.zeros_like(mask)
    bad[10:30, 10:50] = 2
    draw(item, good, ["background", "cell", "debris"], tmp_path / "good.png", "x: good")
    draw(item, bad, ["background", "cell", "debris"], tmp_path / "bad.png", "x: bad")
    with Image.open(tmp_path / "good.png") as a, Image.open(tmp_path / "bad.png") as b:
        assert a.format == "PNG" and a.size == b.size and a.size[0] > 100 and a.size[1] > 50
        assert a.size[0] > a.size[1]  # two panels side by side
        assert not np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
    with pytest.raises(ValueError, match="shape"):
        draw(item, good[:, :10], ["background", "cell", "debris"], tmp_path / "x.png", "x")
