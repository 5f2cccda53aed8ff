"""FCOS targets: level ranges, centre sampling, smallest box wins; decoding inverts the regression."""

from __future__ import annotations

import pytest
import torch

from tasks.detection.metrics import centerness, fcos_targets
from tasks.detection.model import HeadOutput, decode, distances_to_boxes


def _points(size: int, strides=(8, 16, 32)):
    pts, st = [], []
    for s in strides:
        n = (size + s - 1) // s
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        pts.append(torch.stack([xs.flatten(), ys.flatten()], 1).float() * s + s // 2)
        st.append(torch.full((n * n,), float(s)))
    return torch.cat(pts), torch.cat(st)


def test_boxes_go_to_the_level_of_their_size_and_the_smallest_box_wins() -> None:
    points, strides = _points(256)
    boxes = torch.tensor([[100.0, 100.0, 130.0, 130.0], [0.0, 0.0, 250.0, 250.0], [96.0, 96.0, 140.0, 140.0], [0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, -1])  # the last row is padding
    cls, target = fcos_targets(points, strides, boxes, labels)
    small = cls == 0
    assert small.any() and (strides[small] == 8).all()  # reach <= 15 px: P3
    assert (strides[cls == 1] == 32).all() and (cls == 1).any()  # reach ~125 px: P5 (> 128 needs P6; the coarsest level is unbounded)
    # where box 0 and box 2 both claim a P3 location, the smaller (box 0) wins
    both = (points[:, 0] > 100) & (points[:, 0] < 130) & (points[:, 1] > 100) & (points[:, 1] < 130) & (strides == 8)
    assert (cls[both] == 0).all()
    # centre sampling: no positive farther than 1.5 strides from its box centre
    pos = cls >= 0
    centre = (target[pos, :2] + target[pos, 2:]) / 2
    assert ((points[pos] - centre).abs() < 1.5 * strides[pos, None]).all()
    # FCOS centre-ness (Tian et al. 2019) by hand at a point of box 0: sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b))
    p = torch.tensor([[108.0, 124.0]])
    l, t, r, b = 108 - 100, 124 - 100, 130 - 108, 130 - 124
    expected = ((min(l, r) / max(l, r)) * (min(t, b) / max(t, b))) ** 0.5
    assert float(centerness(p, boxes[:1])) == pytest.approx(expected, rel=1e-6)
    assert float(centerness(torch.tensor([[115.0, 115.0]]), boxes[:1])) == pytest.approx(1.0)  # the centre itself


def test_decode_inverts_exact_distances() -> None:
    points, strides = _points(64)
    box = torch.tensor([20.0, 12.0, 44.0, 40.0])
    P = len(points)
    reg = torch.stack([points[:, 0] - box[0], points[:, 1] - box[1], box[2] - points[:, 0], box[3] - points[:, 1]], 1).clamp(min=0)
    cls = torch.full((1, P, 1), -10.0)
    best = int(((points - torch.tensor([32.0, 26.0])).abs().sum(1)).argmin())
    cls[0, best, 0] = 10.0
    out = HeadOutput(cls, reg[None], torch.full((1, P), 10.0), points, strides)
    det = decode(out, (64, 64), score_thresh=0.5)[0]
    assert len(det["boxes"]) == 1 and torch.allclose(det["boxes"][0], box)
    assert torch.allclose(distances_to_boxes(points[best], reg[best]), box)
