"""FCOS targets and loss (Tian et al., "FCOS", ICCV 2019), with torchvision's focal and GIoU losses.

A location is positive for a ground-truth box when it lies inside the box's centre region
(``center_radius`` strides around the box centre, the "center sampling" of the FCOS
follow-up) and the largest of its four distances falls in its level's range
``(4 * stride, 8 * stride]`` (the paper's 64/128/256/512 bounds for P3-P7; the finest level
starts at 0, the coarsest is unbounded). A location claimed by several boxes takes the
smallest. Loss = focal loss (Lin et al. 2017) over all locations / #positives +
GIoU loss (Rezatofighi et al. 2019) weighted by the centerness target + centerness BCE.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from tasks.detection.model import HeadOutput, distances_to_boxes


@torch.no_grad()
def fcos_targets(
    points: torch.Tensor, strides: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, center_radius: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one image: label per location (-1 = background) and the (P, 4) target box per location.

    ``boxes`` (M, 4) and ``labels`` (M,) may carry padding rows with label -1.
    """
    valid = labels >= 0
    boxes, labels = boxes[valid], labels[valid]
    P = points.shape[0]
    if boxes.numel() == 0:
        return torch.full((P,), -1, dtype=torch.long, device=points.device), torch.zeros(P, 4, device=points.device)
    x, y = points[:, 0:1], points[:, 1:2]  # (P, 1)
    l, t = x - boxes[:, 0], y - boxes[:, 1]
    r, b = boxes[:, 2] - x, boxes[:, 3] - y
    ltrb = torch.stack([l, t, r, b], dim=2)  # (P, M, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    rad = strides[:, None] * center_radius
    in_center = ((x - cx).abs() < rad) & ((y - cy).abs() < rad)
    in_box = ltrb.min(dim=2).values > 0
    reach = ltrb.max(dim=2).values
    finest, coarsest = strides.min(), strides.max()
    lo = torch.where(strides == finest, torch.zeros_like(strides), strides * 4)[:, None]
    hi = torch.where(strides == coarsest, torch.full_like(strides, float("inf")), strides * 8)[:, None]
    ok = in_box & in_center & (reach > lo) & (reach <= hi)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(P, -1)
    area = torch.where(ok, area, torch.full_like(area, float("inf")))
    best_area, best = area.min(dim=1)
    cls = torch.where(torch.isfinite(best_area), labels[best], torch.full_like(best, -1))
    return cls, boxes[best]


def centerness(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    l, t = points[:, 0] - boxes[:, 0], points[:, 1] - boxes[:, 1]
    r, b = boxes[:, 2] - points[:, 0], boxes[:, 3] - points[:, 1]
    lr = torch.stack([l, r], 1).clamp(min=1e-6)
    tb = torch.stack([t, b], 1).clamp(min=1e-6)
    return torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))


def fcos_loss(out: HeadOutput, boxes: torch.Tensor, labels: torch.Tensor, center_radius: float = 1.5) -> torch.Tensor:
    """Mean FCOS loss of a batch; ``boxes`` (N, M, 4) and ``labels`` (N, M) padded with label -1."""
    N, P, K = out.cls.shape
    cls_t, box_t = zip(*(fcos_targets(out.points, out.strides, boxes[i], labels[i], center_radius) for i in range(N)))
    cls_t, box_t = torch.stack(cls_t), torch.stack(box_t)  # (N, P), (N, P, 4)
    pos = cls_t >= 0
    n_pos = max(float(pos.sum()), 1.0)
    onehot = torch.zeros_like(out.cls)
    onehot[pos] = F.one_hot(cls_t[pos], K).to(onehot.dtype)
    loss_cls = sigmoid_focal_loss(out.cls, onehot, alpha=0.25, gamma=2.0, reduction="sum") / n_pos
    if not pos.any():
        return loss_cls + 0.0 * (out.reg.sum() + out.ctr.sum())
    pts = out.points.unsqueeze(0).expand(N, -1, -1)[pos]
    ctr_t = centerness(pts, box_t[pos])
    pred = distances_to_boxes(pts, out.reg[pos])
    giou = generalized_box_iou_loss(pred, box_t[pos], reduction="none")
    loss_box = (giou * ctr_t).sum() / ctr_t.sum().clamp(min=1e-6)
    loss_ctr = F.binary_cross_entropy_with_logits(out.ctr[pos], ctr_t, reduction="sum") / n_pos
    return loss_cls + loss_box + loss_ctr
