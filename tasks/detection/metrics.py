"""Detection loss and metrics: the FCOS targets and loss, COCO-style evaluation with pycocotools (mAP over
IoU 0.50:0.95 and mAP@0.5) and drawings of predictions.

FCOS targets and loss (Tian et al., "FCOS", ICCV 2019), with torchvision's focal and GIoU losses.

A location is positive for a ground-truth box when it lies inside the box's centre region
(``center_radius`` strides around the box centre, the "center sampling" of the FCOS
follow-up) and the largest of its four distances falls in its level's range
``(4 * stride, 8 * stride]`` (the paper's 64/128/256/512 bounds for P3-P7; the finest level
starts at 0, the coarsest is unbounded). A location claimed by several boxes takes the
smallest. Loss = focal loss (Lin et al. 2017) over all locations / #positives +
GIoU loss (Rezatofighi et al. 2019) weighted by the centerness target + centerness BCE.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from tasks.detection.data import Annotated, to_tensor
from tasks.detection.model import HeadOutput, distances_to_boxes
from zoo.device import model_device


# ---------------------------------------------------------------- FCOS loss
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


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(model: Any, items: Sequence[Annotated], max_det: int = 300, score_thresh: float = 0.05) -> list[dict[str, np.ndarray]]:
    """Predictions for whole images (one at a time: sizes differ), computed where the model is."""
    was = model.training
    model.eval()
    device = model_device(model)
    out = []
    for it in items:
        p = model.predict(to_tensor(it.image).unsqueeze(0).to(device), score_thresh=score_thresh, max_det=max_det)[0]
        out.append({k: v.cpu().numpy() for k, v in p.items()})
    model.train(was)
    return out


def coco_map(
    items: Sequence[Annotated], preds: Sequence[dict[str, np.ndarray]], classes: Sequence[str], max_det: int = 300
) -> dict[str, float]:
    """``mAP`` (IoU 0.50:0.95) and ``mAP50`` of ``preds`` against ``items``' boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (it, p) in enumerate(zip(items, preds)):
        h, w = it.image.shape[:2]
        images.append({"id": i, "width": int(w), "height": int(h), "file_name": it.name})
        for b, c in zip(it.boxes, it.labels):
            bw, bh = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(c),
                    "bbox": [float(b[0]), float(b[1]), bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
        for b, s, c in zip(p["boxes"], p["scores"], p["labels"]):
            dets.append(
                {
                    "image_id": i,
                    "category_id": int(c),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                    "score": float(s),
                }
            )
    if not anns or not dets:
        return {"mAP": 0.0, "mAP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": k, "name": n} for k, n in enumerate(classes)]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, max_det]
        ev.evaluate()
        ev.accumulate()
    # precision[iou, recall, class, area, max_dets]; area 0 = all, the last max_dets = max_det
    prec = ev.eval["precision"][:, :, :, 0, -1]

    def mean(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else 0.0

    return {"mAP": mean(prec), "mAP50": mean(prec[0])}


def draw(
    item: Annotated, pred: dict[str, np.ndarray], classes: Sequence[str], path: str | Path, title: str, score_thresh: float = 0.3
) -> None:
    """The image with ground truth (green) and predictions scoring above ``score_thresh`` (red, with scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    h, w = item.image.shape[:2]
    fig, ax = plt.subplots(figsize=(7, 7 * h / max(w, 1)), dpi=110)
    ax.imshow(item.image)
    for b in item.boxes:
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, edgecolor="lime", linewidth=1))
    keep = pred["scores"] >= score_thresh
    for b, s, c in zip(pred["boxes"][keep], pred["scores"][keep], pred["labels"][keep]):
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, edgecolor="red", linewidth=1))
        label = f"{s:.2f}" if len(classes) == 1 else f"{classes[int(c)]} {s:.2f}"
        ax.text(b[0], b[1], label, color="red", fontsize=5, va="bottom")
    ax.set_title(f"{title}: {int(keep.sum())} predictions >= {score_thresh} (red), {len(item.boxes)} ground truth (green)", fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
