"""Generated segmentation data: noise images with bright discs (class 1) and grey squares (class 2), as a masks folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_shapes(root: Path, n: int = 12, size: int = 48, seed: int = 0, rgb: bool = False, classes: bool = True) -> Path:
    """``n`` noise images (size x size) with 1-3 discs (radius 4-9, class 1) and 1-2 squares (side 6-14, class 2)
    in ``root/images`` and their index masks in ``root/masks``; ``classes.txt`` names them."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = rng.integers(0, 70, (size, size)).astype(np.float64)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            s = int(rng.integers(6, 15))
            y, x = (int(v) for v in rng.integers(0, size - s, 2))
            mask[y : y + s, x : x + s] = 2
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(4, 10))
            cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        img[mask == 1] = rng.integers(200, 256, int((mask == 1).sum()))
        img[mask == 2] = rng.integers(110, 150, int((mask == 2).sum()))
        pixels = img.astype(np.uint8)
        if rgb:
            pixels = np.stack([pixels, pixels // 2 + 60, 255 - pixels], -1)
        Image.fromarray(pixels).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i:03d}.png")
    if classes:
        (root / "classes.txt").write_text("background\ndisc\nsquare\n")
    return root
