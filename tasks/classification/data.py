"""Image-classification data with no download: scikit-learn's digits, Fashion-MNIST from
Debian's ``dataset-fashion-mnist`` (or a root with the IDX files, or torchvision's
download when online) and a user's ImageFolder directory.

Every loader returns :class:`ImageData`: float tensors (N, C, H, W) scaled to [0, 1]
before normalisation, int64 labels and the class names.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.scenes import FASHION_MNIST_CLASSES, FASHION_MNIST_DIRS, fashion_mnist_files, read_idx
from zoo.task import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class ImageData:
    x: torch.Tensor  # (N, C, H, W) float in [0, 1]
    y: torch.Tensor  # (N,) int64
    classes: list[str]
    x_test: torch.Tensor | None = None  # an official test split, when the data set has one
    y_test: torch.Tensor | None = None

    @property
    def in_chans(self) -> int:
        return int(self.x.shape[1])


def load_digits_data() -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return ImageData(x, torch.tensor(d.target, dtype=torch.int64), [str(c) for c in d.target_names])


def load_fashion_mnist(
    root: str | None = None, download: bool = False, max_train: int | None = None, max_test: int | None = None
) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017) from IDX files; ``root`` overrides the Debian path."""
    files = fashion_mnist_files(root)  # root, or torchvision's layout under it (data.download=true), else Debian's path
    if files is not None:
        xs, ys = read_idx(files["train-images-idx3-ubyte"]), read_idx(files["train-labels-idx1-ubyte"])
        xt, yt = read_idx(files["t10k-images-idx3-ubyte"]), read_idx(files["t10k-labels-idx1-ubyte"])
    else:
        if download and root:
            from torchvision.datasets import FashionMNIST

            tr, te = FashionMNIST(root, train=True, download=True), FashionMNIST(root, train=False, download=True)
            xs, ys, xt, yt = tr.data.numpy(), tr.targets.numpy(), te.data.numpy(), te.targets.numpy()
        else:
            where = root or FASHION_MNIST_DIRS[0]
            raise DataError(
                f"data.root={where!r} has no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
                "install the Debian package dataset-fashion-mnist, pass data.root=DIR, or data.download=true with data.root"
            )
    rng = np.random.default_rng(0)
    if max_train and max_train < len(xs):
        idx = np.sort(rng.permutation(len(xs))[:max_train])
        xs, ys = xs[idx], ys[idx]
    if max_test and max_test < len(xt):
        idx = np.sort(rng.permutation(len(xt))[:max_test])
        xt, yt = xt[idx], yt[idx]
    to_x = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32).unsqueeze(1) / 255.0  # noqa: E731
    return ImageData(to_x(xs), torch.tensor(ys.astype(np.int64)), list(FASHION_MNIST_CLASSES), to_x(xt), torch.tensor(yt.astype(np.int64)))


def _visible(path: Path, root: Path) -> bool:
    """False for anything under a hidden or macOS metadata folder, and for hidden files (``._x.png``)."""
    return not any(part.startswith(".") or part == "__MACOSX" for part in path.relative_to(root).parts)


def _read_image(path: Path, image_size: int, grayscale: bool) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]. 16-bit and 32-bit integer images are scaled by their type's
    range and float images clipped to [0, 1] (PIL's ``convert`` would saturate them to white)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im, dtype=np.float32)
            if im.mode != "F":
                arr = arr / (65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) <= 65535 else 4294967295.0)
            plane = Image.fromarray(np.clip(arr, 0.0, 1.0).astype(np.float32), mode="F").resize((image_size, image_size), Image.BILINEAR)
            gray = np.asarray(plane, dtype=np.float32)
            return gray[None] if grayscale else np.repeat(gray[None], 3, axis=0)
        im = im.convert("L" if grayscale else "RGB").resize((image_size, image_size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(root: str | None, image_size: int = 32, grayscale: bool = False, max_per_class: int | None = None) -> ImageData:
    """An ImageFolder tree: ``root/<class>/<image>`` (images may sit in sub-folders); at least two
    classes with images. Hidden files and folders are ignored; unreadable images are skipped
    with one warning line on stderr that counts them and names the first."""
    from PIL import UnidentifiedImageError

    if not root:
        raise DataError("data.root is not set; data=folder needs data.root=DIR with one sub-directory per class")
    path = Path(root)
    if not path.exists():
        raise DataError(f"data.root={root!r} does not exist")
    if not path.is_dir():
        raise DataError(f"data.root={root!r} is not a directory")
    class_dirs = sorted(d for d in path.iterdir() if d.is_dir() and _visible(d, path))
    per_class = {
        d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and _visible(f, d)) for d in class_dirs
    }
    per_class = {k: v for k, v in per_class.items() if v}
    if not per_class:
        raise DataError(f"data.root={root!r} is empty: expected sub-directories of images, one per class")
    xs, ys, names, skipped = [], [], [], []
    for name in sorted(per_class):
        label = len(names)
        kept = 0
        for f in per_class[name]:
            if max_per_class and kept >= max_per_class:
                break
            try:
                xs.append(_read_image(f, image_size, grayscale))
            except (UnidentifiedImageError, OSError, ValueError) as e:
                skipped.append((f, e.__class__.__name__))
                continue
            ys.append(label)
            kept += 1
        if kept:
            names.append(name)
    if skipped:
        f, why = skipped[0]
        print(f"zoo: warning: skipped {len(skipped)} unreadable image(s) under {root}, the first: {f} ({why})", file=sys.stderr)
    if not names:
        raise DataError(f"data.root={root!r} has no readable images (the first: {skipped[0][0]}, {skipped[0][1]})")
    if len(names) < 2:
        raise DataError(f"data.root={root!r} has one class ({names[0]!r}); classification needs at least 2 class directories")
    return ImageData(torch.tensor(np.stack(xs)), torch.tensor(ys, dtype=torch.int64), names)


def load(data_cfg: Any) -> ImageData:
    name = data_cfg.name
    if name == "digits":
        return load_digits_data()
    if name == "fashion_mnist":
        return load_fashion_mnist(
            data_cfg.get("root") or os.environ.get("ZOO_FASHION_MNIST") or None,
            bool(data_cfg.get("download", False)),
            data_cfg.get("max_train"),
            data_cfg.get("max_test"),
        )
    if name == "folder":
        return load_image_folder(
            data_cfg.get("root"), int(data_cfg.get("image_size", 32)), bool(data_cfg.get("grayscale", False)), data_cfg.get("max_per_class")
        )
    raise DataError(f"data.name={name!r} is unknown for task classification; allowed: digits, fashion_mnist, folder")


def stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held) with ``fraction`` of each class held out (at least one per class)."""
    rng = np.random.default_rng(seed)
    rest, held = [], []
    labels = y.numpy()
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        held += idx[:k].tolist()
        rest += idx[k:].tolist()
    return np.sort(np.array(rest, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))
