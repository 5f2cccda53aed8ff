"""Generated data sets and bundles the tests share: COCO rectangles (detection), an ImageFolder of
handwritten digits (classification), a tiny saved classification bundle (the hub)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_box_images(
    root: Path,
    n: int,
    size: int,
    seed: int,
    sides: tuple[int, int],
    categories: list[str],
    paint: Callable[[np.random.Generator], tuple[np.ndarray, int]],
) -> Path:
    """``n`` noise images with 1-3 filled axis-aligned rectangles (sides in ``sides``, high end
    excluded) each, as COCO json; ``paint(rng) -> (colour, category id)`` fills one rectangle."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            w, h = (int(v) for v in rng.integers(sides[0], sides[1], 2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            colour, cat = paint(rng)
            img[y : y + h, x : x + w] = colour
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h]})
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        images.append({"id": i, "file_name": f"{i:03d}.png", "width": size, "height": size})
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(categories)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def make_rectangles(root: Path, n: int = 40, size: int = 64, seed: int = 0) -> Path:
    """``n`` noise images with 1-3 bright axis-aligned rectangles (10-22 px) each, as COCO json."""
    return write_box_images(root, n, size, seed, (10, 23), ["box"], lambda rng: (rng.integers(200, 256, 3).astype(np.uint8), 1))


def make_colours(root: Path, n: int = 40, size: int = 64, seed: int = 1) -> Path:
    """``n`` noise images with 1-3 filled rectangles (12-24 px), each red or blue: two COCO categories."""

    def paint(rng: np.random.Generator) -> tuple[list[int], int]:
        cat = int(rng.integers(1, 3))
        bright, dark = rng.integers(200, 256), rng.integers(0, 60, 2)
        return ([bright, dark[0], dark[1]] if cat == 1 else [dark[0], dark[1], bright]), cat

    return write_box_images(root, n, size, seed, (12, 25), ["red", "blue"], paint)


def digit_folder(root: Path, digits: tuple[int, ...] = (0, 1, 7, 4), per_class: int = 30) -> Path:
    """An ImageFolder of RGB 32x32 PNGs of scikit-learn's handwritten digits, one class per digit."""
    from sklearn.datasets import load_digits

    d = load_digits()
    names = ["zero", "one", "seven", "four"]
    for name, digit in zip(names, digits):
        (root / name).mkdir(parents=True)
        idx = np.flatnonzero(d.target == digit)[-per_class:]  # the last images of each digit
        for i in idx:
            img = Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BILINEAR).convert("RGB")
            img.save(root / name / f"{i}.png")
    return root


def tiny_bundle(directory: Path, seed: int = 0) -> Path:
    """A saved bundle of a 2-cell DARTS-V2 network on 8x8 grayscale, 3 classes, weights from ``seed``."""
    import zoo
    from zoo.hub.bundle import save_bundle

    torch.manual_seed(seed)
    args = {"arch": "darts_v2", "num_classes": 3, "init_channels": 4, "layers": 2, "in_chans": 1, "mean": [0.3], "std": [0.3]}
    model = zoo.create_model(**args)
    return save_bundle(
        directory,
        model,
        {
            "task": "classification",
            "model": args,
            "labels": ["a", "b", "c"],
            "data": {"name": "digits", "image_size": 8, "in_chans": 1},
            "metrics": {"test_accuracy": 0.5, "params": 1234},
            "search": {"strategy": "darts", "space": "darts"},
            "license": "Apache-2.0",
        },
    )
