"""Segmentation scores from exact integer pixel counts (confusion matrix, IoU per class, mIoU, pixel accuracy) and drawings of predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.segmentation.data import SegImage


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """(K, K) int64 pixel counts, rows = true class, columns = predicted class; pixels whose target is ``ignore_index`` are skipped."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    keep = target != ignore_index
    t = target[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    for what, v in (("target", t), ("prediction", p)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            bad = int(v.min()) if v.min() < 0 else int(v.max())
            raise ValueError(f"{what} holds class index {bad}, outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.int64)


def scores(conf: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """``mIoU``: mean IoU over the classes present in the target or the prediction; ``pixel_accuracy``: correct / counted
    pixels; ``per_class_IoU``: {name: IoU, or None for a class absent from both}. Both are 0.0 when no pixel was counted."""
    conf = np.asarray(conf, dtype=np.int64)
    if conf.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix shape {conf.shape} does not match {len(classes)} classes")
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    per_class = {name: (float(tp[k] / union[k]) if union[k] else None) for k, name in enumerate(classes)}
    present = [v for v in per_class.values() if v is not None]
    total = int(conf.sum())
    return {
        "mIoU": float(np.mean(present)) if present else 0.0,
        "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
        "per_class_IoU": per_class,
    }


def class_colors(num_classes: int) -> np.ndarray:
    """(K, 3) float RGB colours; class 0 (background) is never drawn."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if num_classes <= 11 else "tab20"]
    n = cmap.N
    return np.array([(0.0, 0.0, 0.0)] + [cmap((k - 1) % n)[:3] for k in range(1, num_classes)], dtype=np.float64)


def _overlay(mask: np.ndarray, colors: np.ndarray, fill: float = 0.45) -> np.ndarray:
    """RGBA (H, W, 4): each class > 0 filled at ``fill`` opacity with its region outline opaque; background and
    out-of-range values (ignore) transparent."""
    H, W = mask.shape
    out = np.zeros((H, W, 4), dtype=np.float64)
    drawn = (mask > 0) & (mask < len(colors))
    out[drawn, :3] = colors[mask[drawn]]
    edge = np.zeros((H, W), dtype=bool)
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    edge[:-1, :] |= mask[1:, :] != mask[:-1, :]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, 1:] != mask[:, :-1]
    out[drawn, 3] = fill
    out[drawn & edge, 3] = 1.0
    return out


def draw(item: SegImage, pred: np.ndarray, classes: Sequence[str], path: str | Path, title: str) -> None:
    """A PNG of two panels, the image overlaid with its true mask ("true") and with ``pred`` ("predicted"): classes
    filled in their legend colour with opaque outlines, background (class 0) and ignored pixels left uncoloured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    pred = np.asarray(pred)
    if pred.shape != item.mask.shape:
        raise ValueError(f"{item.name}: prediction shape {pred.shape} differs from mask shape {item.mask.shape}")
    colors = class_colors(len(classes))
    H, W = item.mask.shape
    inch = min(5.0 / W, 7.0 / H)  # inches a pixel: a panel at most 5 in wide and 7 in tall
    fig, axes = plt.subplots(1, 2, figsize=(2 * W * inch + 0.4, H * inch + 1.4), dpi=110)
    gray = item.image.shape[2] == 1
    shown = item.image[..., 0] if gray else item.image
    truth = np.where((item.mask >= 0) & (item.mask < len(classes)), item.mask, -1)  # ignore_index: uncoloured
    for ax, mask, label in ((axes[0], truth, "true"), (axes[1], pred, "predicted")):
        ax.imshow(shown, cmap="gray" if gray else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.imshow(_overlay(mask, colors), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    handles = [Patch(facecolor=colors[k], edgecolor=colors[k], label=classes[k]) for k in range(1, len(classes))]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6) or 1, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
