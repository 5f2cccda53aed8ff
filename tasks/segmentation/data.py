"""Semantic segmentation data with no download, and the user's image/mask folders.

* ``nuclei``: the fluorescence image of cell nuclei and its instance mask shipped in the PyPI package
  ``stardist`` (Schmidt et al., "Cell Detection with Star-convex Polygons", MICCAI 2018), read from
  its ``data/images/img2d.tif`` and ``mask2d.tif`` (the package is never imported). Every instance
  becomes class 1 ``nucleus``. The right-most ``test_columns`` columns are held out as the test
  region; the other columns are cut into overlapping training tiles.
* ``masks``: ``root/images/*`` (PNG, JPEG, TIFF, BMP) and ``root/masks/*.png`` paired by file stem,
  each mask holding one class index per pixel (mode ``L`` or ``P``, read as raw indices; mode ``1``
  as 0/1), class names from an optional ``root/classes.txt`` (without it, masks of more than
  ``MAX_UNNAMED_CLASSES`` distinct values are refused as grey levels).
* ``voc_seg``: the Pascal-VOC segmentation layout: ``root/JPEGImages/<id>.jpg``, palette PNGs
  ``root/SegmentationClass/<id>.png`` and the id lists ``root/ImageSets/Segmentation/<split>.txt``.
* ``scenes``: multi-object scenes generated from real object images (:mod:`zoo.scenes`; Fashion-MNIST by
  default): class masks with ``background`` and the object classes; test scenes from held-out objects.

Every data set gives equal-size training tiles, two pixel-disjoint subsets of them for a search
(``search_train`` for the weights, ``search_valid`` for scoring architectures) and whole test
images or regions sharing no pixel with any training tile. Loaders reject broken input before any
training with one :class:`DataError` line naming the file and the problem. :class:`TileDataset`
serves the tiles as tensors (flipped and turned when augmenting); :func:`channel_stats` gives the
normalisation statistics of the training pixels.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.task import AugmentedItems, DataError

DATA_SETS = ("scenes", "nuclei", "masks", "voc_seg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
NUCLEI_FILES = ("img2d.tif", "mask2d.tif")
STARDIST_INSTALL = "pip install --no-deps stardist==0.9.2"
# PIL modes read as one channel; every other mode is converted to RGB
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# more distinct mask values than this, with no classes.txt naming them, are taken for grey levels
# (a photo or an intensity map saved as the mask), not class indices: refused before any training
MAX_UNNAMED_CLASSES = 64


@dataclass
class SegImage:
    """One image (H, W, C) float32 in [0, 1] and its mask (H, W) int64 of class indices (``ignore_index`` where unlabelled)."""

    name: str
    image: np.ndarray
    mask: np.ndarray


@dataclass
class SegmentationData:
    train: list[SegImage]
    search_train: list[SegImage]
    search_valid: list[SegImage]
    test: list[SegImage]
    classes: list[str]
    in_chans: int
    ignore_index: int
    source: dict[str, Any] = field(default_factory=dict)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__


def _positive_int(cfg: Any, key: str, default: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"data.{key}={value!r} must be a positive integer")
    return value


def _scale(cfg: Any) -> float:
    value = cfg.get("scale", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DataError(f"data.scale={value!r} must be a positive number")
    return float(value)


# ---------------------------------------------------------------- reading files
def read_image(path: Path) -> np.ndarray:
    """``path`` as (H, W, C) float32 in [0, 1]: C = 1 for grayscale modes, else 3 (RGB, alpha dropped).
    8-bit values are divided by 255, 16-bit by 65535; 32-bit integer and float images are scaled by their own min and max."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in _GRAY_MODES:
                return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
            if im.mode in ("1", "L", "LA"):
                a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            elif im.mode.startswith("I;16"):
                a = np.asarray(im, dtype=np.float32) / 65535.0
            else:
                a = np.asarray(im, dtype=np.float32)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read image ({_one_line(e)})") from None
    return np.ascontiguousarray(a[..., None], dtype=np.float32)


def read_mask(path: Path) -> np.ndarray:
    """A PNG of class indices (mode ``L`` or ``P`` read as raw indices; mode ``1`` as 0/1) as (H, W) int64."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "1"):
                raise DataError(
                    f"{path}: mask has mode {im.mode}; a mask is a PNG of mode L or P holding one class index per pixel, or of mode 1 (0/1)"
                )
            return np.asarray(im, dtype=np.int64).copy()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot read mask ({_one_line(e)})") from None


def _check_size(mask: np.ndarray, mask_path: Path, image: np.ndarray, image_path: Path) -> None:
    if mask.shape[:2] != image.shape[:2]:
        (h, w), (H, W) = mask.shape[:2], image.shape[:2]
        raise DataError(f"{mask_path}: mask is {h}x{w} but its image {image_path} is {H}x{W} (height x width)")


def _check_channels(images: Sequence[np.ndarray], paths: Sequence[Path]) -> int:
    """The common channel count, or a DataError naming the first image whose count differs from the first image's."""
    chans = images[0].shape[2]
    for image, path in zip(images, paths):
        if image.shape[2] != chans:
            raise DataError(
                f"{path}: image has {image.shape[2]} channel(s) but {paths[0]} has {chans}; all images of a data set need the same channel count"
            )
    return chans


def read_classes(path: Path) -> list[str]:
    """One class name a line (trailing blank lines dropped); names must be unique and not blank."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read class names ({_one_line(e)})") from None
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DataError(f"{path}: no class names (one name a line, line 1 = class 0)")
    for k, n in enumerate(names):
        if not n:
            raise DataError(f"{path}: line {k + 1} is blank; every class index up to the last needs a name")
        if n in names[:k]:
            raise DataError(f"{path}: line {k + 1} repeats the class name {n!r}")
    return names


def _class_list(masks: Sequence[np.ndarray], mask_paths: Sequence[Path], ignore_index: int, classes_file: Path, default: Any) -> list[str]:
    """Class names from ``classes_file`` (every mask's indices checked against it), else ``default(highest index seen)``."""
    named = read_classes(classes_file) if classes_file.is_file() else None
    highest = -1
    used: set[int] = set()
    saw_ignore = False
    for mask, path in zip(masks, mask_paths):
        saw_ignore = saw_ignore or bool((mask == ignore_index).any())
        labelled = mask[mask != ignore_index]
        if not labelled.size:
            continue
        low, high = int(labelled.min()), int(labelled.max())
        if low < 0:
            raise DataError(f"{path}: class index {low} is negative")
        if named is not None and high >= len(named):
            raise DataError(f"{path}: class index {high} is out of range; {classes_file} names {len(named)} classes (0..{len(named) - 1})")
        highest = max(highest, high)
        used.update(int(v) for v in np.unique(labelled))
    if highest < 0:
        raise DataError(f"{mask_paths[0].parent}: every mask pixel is ignore_index {ignore_index}; no labelled pixels")
    if named is None and len(used) > MAX_UNNAMED_CLASSES:
        raise DataError(
            f"{mask_paths[0].parent}: the masks hold {len(used)} distinct values ({min(used)}..{highest}), which look like grey "
            f"levels, not class indices: a mask holds one class index per pixel (0..K-1, {ignore_index} = unlabelled); if there "
            f"really are {highest + 1} classes, name them in {classes_file} (one a line)"
        )
    classes = named if named is not None else default(highest)
    if named is not None and len(named) < 2:
        raise DataError(f"{classes_file}: names {len(named)} class; segmentation needs at least 2 (line 1 = class 0, the background)")
    if len(classes) < 2:
        hint = (
            f"; pixels of value {ignore_index} are data.ignore_index (unlabelled): binary masks saved as 0/{ignore_index} must hold "
            "class indices 0/1"
            if saw_ignore
            else f" (or name them in {classes_file})"
        )
        raise DataError(f"{mask_paths[0].parent}: only class 0 appears in the masks; segmentation needs at least 2 classes{hint}")
    if named is None and len(classes) == highest + 1 and highest >= 10 and len(used) * 2 < highest + 1:
        # legal (a sample may lack classes) but the mark of masks saved as grey levels: say so once, then go on
        warnings.warn(
            f"{mask_paths[0].parent}: mask values go up to {highest} but only {len(used)} of them appear "
            f"({', '.join(map(str, sorted(used)[:8]))}{', ...' if len(used) > 8 else ''}): {highest + 1} classes; masks should hold "
            f"class indices 0..K-1 (name the classes in {classes_file})",
            stacklevel=2,
        )
    if 0 <= ignore_index < len(classes):
        raise DataError(
            f"data.ignore_index={ignore_index} is also a class index (classes 0..{len(classes) - 1}); choose an unused value such as 255"
        )
    return classes


# ---------------------------------------------------------------- resizing, tiling, splits
def rescale(item: SegImage, scale: float) -> SegImage:
    """``item`` resized by ``scale``: the image bilinear, the mask nearest."""
    if scale == 1.0:
        return item
    from PIL import Image

    H, W = item.mask.shape
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    chans = [np.asarray(Image.fromarray(item.image[..., c], mode="F").resize(size, Image.BILINEAR)) for c in range(item.image.shape[2])]
    image = np.clip(np.stack(chans, axis=-1), 0.0, 1.0).astype(np.float32)
    mask = np.asarray(Image.fromarray(item.mask.astype(np.int32), mode="I").resize(size, Image.NEAREST)).astype(np.int64)
    return SegImage(item.name, image, mask)


def positions(length: int, size: int, stride: int) -> list[int]:
    """Window origins from 0 at ``stride``, the last snapped so that its window ends at ``length`` (``length >= size``)."""
    last = length - size
    out = list(range(0, last + 1, stride))
    if out[-1] != last:
        out.append(last)
    return out


def tile(item: SegImage, size: int, stride: int, ignore_index: int, name: str | None = None, x0: int = 0, y0: int = 0) -> list[SegImage]:
    """``size`` x ``size`` windows of ``item`` at ``stride`` (the last row and column snapped to the border), named
    ``{name}_r{y}_c{x}`` with the origin offset by ``(y0, x0)``. An image smaller than a tile is padded (0 image, ``ignore_index`` mask)."""
    name = item.name if name is None else name
    image, mask = item.image, item.mask
    H, W = mask.shape
    if H < size or W < size:
        ph, pw = max(H, size), max(W, size)
        image = np.zeros((ph, pw, item.image.shape[2]), dtype=np.float32)
        image[:H, :W] = item.image
        mask = np.full((ph, pw), ignore_index, dtype=np.int64)
        mask[:H, :W] = item.mask
        H, W = ph, pw
    return [
        SegImage(f"{name}_r{y + y0}_c{x + x0}", image[y : y + size, x : x + size].copy(), mask[y : y + size, x : x + size].copy())
        for y in positions(H, size, stride)
        for x in positions(W, size, stride)
    ]


def split_tiles(
    train: Sequence[SegImage], size: int, ignore_index: int, seed: int, where: str
) -> tuple[list[SegImage], list[SegImage], list[SegImage], list[str]]:
    """Tiles of the training images (windows at stride ``size``) as ``train, search_train, search_valid`` and the
    names of the images whose tiles are in ``search_valid``: about a quarter of the images (seeded, at least one).
    A single training image is split into its left and right halves, tiled separately, so no tile crosses the middle."""
    if len(train) == 1:
        item = train[0]
        H, W = item.mask.shape
        if W < 2:
            raise DataError(
                f"{where}: the only training image {item.name} is {H}x{W}; it needs a width of at least 2 to split into search halves"
            )
        mid = W // 2
        left = tile(SegImage(item.name, item.image[:, :mid], item.mask[:, :mid]), size, size, ignore_index)
        right = tile(SegImage(item.name, item.image[:, mid:], item.mask[:, mid:]), size, size, ignore_index, x0=mid)
        return left + right, left, right, [f"{item.name} (columns {mid}..{W - 1})"]
    rng = np.random.default_rng([seed, 1])
    n_valid = min(len(train) - 1, max(1, round(len(train) / 4)))
    valid = set(rng.permutation(len(train))[:n_valid].tolist())
    tiles = [tile(item, size, size, ignore_index) for item in train]
    search_train = [t for k, ts in enumerate(tiles) if k not in valid for t in ts]
    search_valid = [t for k, ts in enumerate(tiles) if k in valid for t in ts]
    return [t for ts in tiles for t in ts], search_train, search_valid, [train[k].name for k in sorted(valid)]


def _names(items: Sequence[str], limit: int = 50) -> list[str] | int:
    """The names, or only their count when there are more than ``limit`` (``config.json`` stays short)."""
    return list(items) if len(items) <= limit else len(items)


# ---------------------------------------------------------------- nuclei (stardist's files)
def _stardist_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stardist")
    except PackageNotFoundError:
        return "?"


def stardist_data_dir() -> Path:
    """``site-packages/stardist/data/images`` located without importing the package."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data=nuclei reads the nuclei image shipped in the PyPI package stardist; install it with: {STARDIST_INSTALL} "
            "(or pass data.root=DIR holding img2d.tif and mask2d.tif)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "images"


def _read_tif(path: Path) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        raise DataError(f"{path}: reading TIFF files needs the package tifffile; install it with: pip install tifffile") from None
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        a = np.asarray(tifffile.imread(path))
    except Exception as e:  # tifffile raises many kinds on a broken file
        raise DataError(f"{path}: cannot read TIFF ({_one_line(e)})") from None
    if a.ndim != 2:
        raise DataError(f"{path}: expected a 2-D single-channel image, got shape {tuple(a.shape)}")
    return a


def normalize(x: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """(x - p_low) / (p_high - p_low) clipped to [0, 1], as float32."""
    x = x.astype(np.float32)
    lo, hi = np.percentile(x, [low, high])
    return np.clip((x - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0).astype(np.float32)


def load_nuclei(cfg: Any) -> SegmentationData:
    d = Path(cfg.get("root")) if cfg.get("root") else stardist_data_dir()
    image_path, mask_path = d / NUCLEI_FILES[0], d / NUCLEI_FILES[1]
    raw, instances = _read_tif(image_path), _read_tif(mask_path)
    if instances.shape != raw.shape:
        (h, w), (H, W) = instances.shape, raw.shape
        raise DataError(f"{mask_path}: mask is {h}x{w} but its image {image_path} is {H}x{W} (height x width)")
    size = _positive_int(cfg, "tile_size", 64)
    stride = _positive_int(cfg, "tile_stride", 32)
    test_cols = _positive_int(cfg, "test_columns", 128)
    H, W = raw.shape
    train_cols = W - test_cols
    if size > H or 2 * size > train_cols:
        raise DataError(
            f"{image_path}: {H}x{W} image with data.test_columns={test_cols} leaves {train_cols} training columns; "
            f"data.tile_size={size} needs at least {2 * size} (a tile in each search half) and at most {H} rows"
        )
    image = normalize(raw)[..., None]
    mask = (instances > 0).astype(np.int64)
    stem = image_path.stem
    test = [SegImage(f"{stem}_r0_c{train_cols}", image[:, train_cols:].copy(), mask[:, train_cols:].copy())]
    mid = train_cols // 2
    train, search_train, search_valid = [], [], []
    for y in positions(H, size, stride):
        for x in positions(train_cols, size, stride):
            t = SegImage(f"{stem}_r{y}_c{x}", image[y : y + size, x : x + size].copy(), mask[y : y + size, x : x + size].copy())
            train.append(t)
            if x + size <= mid:
                search_train.append(t)
            elif x >= mid:
                search_valid.append(t)
    source = {
        "name": "nuclei",
        # stardist's own files are named by package and version, not by where this machine installed them
        "root": str(d) if cfg.get("root") else f"stardist {_stardist_version()} package data (stardist/data/images)",
        "image": str(image_path) if cfg.get("root") else image_path.name,
        "mask": str(mask_path) if cfg.get("root") else mask_path.name,
        "image_size": [H, W],
        "tile_size": size,
        "tile_stride": stride,
        "test_columns": test_cols,
        "test_region": {"rows": [0, H], "columns": [train_cols, W]},
        "search_train_columns": [0, mid],
        "search_valid_columns": [mid, train_cols],
        "sizes": {"train": len(train), "search_train": len(search_train), "search_valid": len(search_valid), "test": len(test)},
    }
    return SegmentationData(train, search_train, search_valid, test, ["background", "nucleus"], 1, 255, source)


# ---------------------------------------------------------------- the user's image / mask folders
def _root(cfg: Any, needs: str) -> Path:
    root = cfg.get("root")
    if not root:
        raise DataError(f"data.root is not set; data={cfg.get('name')} needs a directory with {needs}")
    root = Path(str(root))
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a directory")
    return root


def _subdir(root: Path, name: str) -> Path:
    d = root / name
    if not d.is_dir():
        raise DataError(f"{d}: folder not found")
    return d


def _by_stem(files: Sequence[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(f"{f}: stem {f.stem!r} is also used by {out[f.stem]}")
        out[f.stem] = f
    return out


def _finish(
    cfg: Any,
    train: list[SegImage],
    test: list[SegImage],
    classes: list[str],
    in_chans: int,
    ignore_index: int,
    source: dict[str, Any],
    where: str,
    size: int | None = None,
) -> SegmentationData:
    size = size or _positive_int(cfg, "tile_size", 64)
    seed = int(cfg.get("split_seed", 0))
    tiles, search_train, search_valid, valid_names = split_tiles(train, size, ignore_index, seed, where)
    source.update(
        {
            "tile_size": size,
            "split_seed": seed,
            "ignore_index": ignore_index,
            "test_images": _names([t.name for t in test]),
            "search_valid_images": _names(valid_names),
            "sizes": {
                "train_images": len(train),
                "test_images": len(test),
                "train": len(tiles),
                "search_train": len(search_train),
                "search_valid": len(search_valid),
                "test": len(test),
            },
        }
    )
    return SegmentationData(tiles, search_train, search_valid, test, classes, in_chans, ignore_index, source)


def load_masks(cfg: Any) -> SegmentationData:
    root = _root(cfg, "images/ and masks/")
    image_dir, mask_dir = _subdir(root, "images"), _subdir(root, "masks")
    ignore_index = int(cfg.get("ignore_index", 255))
    scale = _scale(cfg)
    images = _by_stem(sorted(f for f in image_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
    if not images:
        raise DataError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    masks = _by_stem(sorted(f for f in mask_dir.iterdir() if f.is_file() and f.suffix.lower() == ".png"))
    for stem, path in images.items():
        if stem not in masks:
            others = sorted(f.name for f in mask_dir.glob(f"{stem}.*"))
            hint = f" (found {others[0]}; masks must be PNG)" if others else ""
            raise DataError(f"{path}: no mask with stem {stem!r} in {mask_dir}{hint}")
    for stem, path in masks.items():
        if stem not in images:
            raise DataError(f"{path}: no image with stem {stem!r} in {image_dir}")
    stems = sorted(images)
    if len(stems) < 2:
        raise DataError(f"{image_dir}: 1 image; data=masks needs at least 2 (one held out for testing)")
    pixels = [read_image(images[s]) for s in stems]
    labels = [read_mask(masks[s]) for s in stems]
    for s, image, mask in zip(stems, pixels, labels):
        _check_size(mask, masks[s], image, images[s])
    in_chans = _check_channels(pixels, [images[s] for s in stems])
    classes = _class_list(
        labels, [masks[s] for s in stems], ignore_index, root / "classes.txt", lambda high: [f"class_{k}" for k in range(high + 1)]
    )
    fraction = float(cfg.get("test_fraction", 0.2))
    if not 0.0 < fraction < 1.0:
        raise DataError(f"data.test_fraction={fraction} must lie strictly between 0 and 1")
    seed = int(cfg.get("split_seed", 0))
    order = np.random.default_rng(seed).permutation(len(stems))
    n_test = min(len(stems) - 1, max(1, round(fraction * len(stems))))
    held = set(order[:n_test].tolist())
    items = [rescale(SegImage(s, x, m), scale) for s, x, m in zip(stems, pixels, labels)]
    test = [it for k, it in enumerate(items) if k in held]
    train = [it for k, it in enumerate(items) if k not in held]
    source = {"name": "masks", "root": str(root), "scale": scale, "test_fraction": fraction, "images": len(stems)}
    return _finish(cfg, train, test, classes, in_chans, ignore_index, source, str(image_dir))


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: id list not found")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: no ids")
    for k, i in enumerate(ids):
        if i in ids[:k]:
            raise DataError(f"{path}: id {i!r} is listed twice")
    return ids


def load_voc_seg(cfg: Any) -> SegmentationData:
    root = _root(cfg, "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/")
    image_dir, mask_dir = _subdir(root, "JPEGImages"), _subdir(root, "SegmentationClass")
    list_dir = _subdir(root, "ImageSets/Segmentation")
    ignore_index = int(cfg.get("ignore_index", 255))
    scale = _scale(cfg)
    train_split, test_split = str(cfg.get("train_split", "train")), str(cfg.get("test_split", "val"))
    train_list, test_list = list_dir / f"{train_split}.txt", list_dir / f"{test_split}.txt"
    train_ids, test_ids = _read_list(train_list), _read_list(test_list)
    shared = set(train_ids) & set(test_ids)
    if shared:
        raise DataError(f"{test_list}: id {sorted(shared)[0]!r} is also in {train_list}; the test images must not be trained on")
    paths: list[tuple[Path, Path]] = []
    for list_path, ids in ((train_list, train_ids), (test_list, test_ids)):
        for i in ids:
            image_path = image_dir / f"{i}.jpg"
            if not image_path.is_file():
                image_path = next((image_dir / f"{i}{s}" for s in IMAGE_SUFFIXES if (image_dir / f"{i}{s}").is_file()), image_path)
            if not image_path.is_file():
                raise DataError(f"{list_path}: id {i!r} has no image {image_path}")
            if not (mask_dir / f"{i}.png").is_file():
                raise DataError(f"{list_path}: id {i!r} has no mask {mask_dir / f'{i}.png'}")
            paths.append((image_path, mask_dir / f"{i}.png"))
    pixels, labels = [], []
    for image_path, mask_path in paths:
        image = read_image(image_path)
        if image.shape[2] == 1:  # a grayscale JPEG among colour ones: VOC images are RGB
            image = np.repeat(image, 3, axis=2)
        mask = read_mask(mask_path)
        _check_size(mask, mask_path, image, image_path)
        pixels.append(image)
        labels.append(mask)

    def default(high: int) -> list[str]:
        return list(VOC_CLASSES) if high < len(VOC_CLASSES) else [f"class_{k}" for k in range(high + 1)]

    classes = _class_list(labels, [m for _, m in paths], ignore_index, root / "classes.txt", default)
    items = [rescale(SegImage(m.stem, x, y), scale) for (_, m), x, y in zip(paths, pixels, labels)]
    train, test = items[: len(train_ids)], items[len(train_ids) :]
    source = {"name": "voc_seg", "root": str(root), "scale": scale, "train_split": train_split, "test_split": test_split}
    return _finish(cfg, train, test, classes, 3, ignore_index, source, str(train_list))


def load_scenes(cfg: Any) -> SegmentationData:
    """Generated scenes (:mod:`zoo.scenes`): each training scene is one tile (padded, ``ignore_index`` outside it),
    a quarter of them (seeded) scores architectures in a search, and the test scenes are drawn from held-out objects."""
    from zoo.scenes import load_scenes as scenes

    d = scenes(cfg)
    as_items = lambda split, items: [  # noqa: E731
        SegImage(f"{split}{i:05d}", s.image.astype(np.float32) / 255.0, s.class_mask) for i, s in enumerate(items)
    ]
    train, test = as_items("train", d.train), as_items("test", d.test)
    return _finish(cfg, train, test, ["background", *d.classes], 3, 255, d.source, "data=scenes", d.tile_size)


def load(cfg: Any) -> SegmentationData:
    """The configured data set (``cfg.name`` in :data:`DATA_SETS`): training tiles, the two search subsets and the test images."""
    name = cfg.get("name")
    if name == "scenes":
        return load_scenes(cfg)
    if name == "nuclei":
        return load_nuclei(cfg)
    if name == "masks":
        return load_masks(cfg)
    if name == "voc_seg":
        return load_voc_seg(cfg)
    raise DataError(f"data={name} is not segmentation data; allowed with task=segmentation: {', '.join(DATA_SETS)}")


# ---------------------------------------------------------------- training batches and statistics
def channel_stats(items: Sequence[SegImage], chans: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over all pixels of ``items`` (float64 sums, two passes:
    the mean first, then squared deviations from it, which stays exact where one pass would cancel)."""
    n = sum(t.image.shape[0] * t.image.shape[1] for t in items)
    mean = sum(t.image.reshape(-1, chans).sum(0, dtype=np.float64) for t in items) / n
    var = sum(((t.image.reshape(-1, chans) - mean) ** 2).sum(0, dtype=np.float64) for t in items) / n
    return [float(m) for m in mean], [max(float(s), 1e-3) for s in np.sqrt(var)]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) float in [0, 1] -> (C, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)


class TileDataset(AugmentedItems[SegImage]):
    """Tiles as (image, mask) tensors; with ``augment``, random flips and (square tiles) quarter turns."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x, y = to_tensor(it.image), torch.from_numpy(np.ascontiguousarray(it.mask, dtype=np.int64))
        if self.augment:
            if self.rng.random() < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            if self.rng.random() < 0.5:
                x, y = x.flip(-2), y.flip(-2)
            if x.shape[-1] == x.shape[-2]:
                k = int(self.rng.integers(4))
                x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        return x.contiguous(), y.contiguous()
