"""COCO-style evaluation with pycocotools (mAP over IoU 0.50:0.95 and mAP@0.5) and drawings of predictions."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tasks.detection.data import Annotated
from zoo.fit import model_device


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)


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
