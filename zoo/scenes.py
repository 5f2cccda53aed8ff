"""Multi-object scenes composed from real object images: boxes, class masks and instance ids from one generator.

**What.** A scene is a 96-128 px RGB canvas with 2-6 labelled objects at random scales and colours on a
cluttered background: a smooth colour field, a texture of band-limited noise and stripes, and distractor
patches cut from other objects (fragments, never whole objects, and never labelled). Each scene carries the
tight box and class of every object and an instance map (0 background, ``k + 1`` object ``k``), from which a
class mask follows (0 background, ``label + 1``). Objects come from Fashion-MNIST (Xiao et al. 2017, the
Debian package ``dataset-fashion-mnist``; training scenes from its training split, test scenes from its test
split only) or from the user's folder of object crops (:func:`folder_objects`).

**Why.** With a handful of real images, seed noise is larger than any architecture's effect: a search cannot
tell a good architecture from a bad one. Thousands of scenes of real object shapes, with clutter that no
intensity threshold separates from the objects, give the detection and segmentation searches a signal.

**How it stays reproducible.** Scene ``i`` of split ``s`` is drawn from its own generator,
``numpy.random.default_rng([seed, s, i])``, and from the object pool of its split only, so asking for more
scenes keeps the first ones unchanged, and the scene set is a function of (objects, seed, settings, the
generator's :data:`VERSION`). Generated sets are cached under ``$ZOO_HOME/scenes/`` as ``.npz`` arrays
(read with ``allow_pickle=False``) keyed by a hash of exactly those inputs; a write is atomic.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.atomic import write_atomic
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE_INT, ConfigError, Number, Text, check_values
from zoo.task import DataError

VERSION = 1  # bump when the generator's output changes: cached sets of another version are not reused
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
SPLITS = {"train": 0, "test": 1}
# the keys of a data=scenes node, checked before any work (zoo.config_values); the tasks add their own (tile_size, ...)
SCENE_SPECS = {
    "objects": Text(null=True),
    "root": Text(null=True),
    "train_scenes": POSITIVE_INT,
    "test_scenes": POSITIVE_INT,
    "seed": NON_NEGATIVE_INT,
    "canvas": Number(integer=True, low=32, items=True),
    "min_objects": POSITIVE_INT,
    "max_objects": POSITIVE_INT,
    "object_size": Number(integer=True, low=8, items=True),
    "max_occlusion": Number(integer=False, low=0.0, high=1.0, high_open=True),
    "distractors": Number(integer=True, low=0, items=True),
}


class SceneError(DataError):
    """Bad scene settings or object files, in one line naming the field or the file."""


@dataclass(frozen=True)
class ObjectSet:
    """Object crops: ``images[k]`` (h, w) grey or (h, w, 3) RGB uint8, ``mask(k)`` (h, w) bool, ``labels[k]`` an index into ``classes``."""

    images: Sequence[np.ndarray]
    masks: Sequence[np.ndarray] | None  # None: the pixels above 8/255, holes filled (grey objects on black), computed when drawn
    labels: np.ndarray
    classes: list[str]
    identity: str  # what the cache key names: the files the objects came from

    def __len__(self) -> int:
        return len(self.images)

    def mask(self, k: int) -> np.ndarray:
        return self.masks[k] if self.masks is not None else _fill(self.images[k] > 8)


@dataclass(frozen=True)
class Scene:
    """``image`` (H, W, 3) uint8; ``boxes`` (n, 4) float32 x1, y1, x2, y2 (tight around the visible pixels);
    ``labels`` (n,) int64; ``instances`` (H, W) uint8, 0 background and ``k + 1`` where object ``k`` is visible;
    ``areas`` (n,) int64, each object's pixels when it was placed (before later objects covered part of it)."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    areas: np.ndarray

    @property
    def class_mask(self) -> np.ndarray:
        """(H, W) int64: 0 background, ``label + 1`` on each object."""
        lut = np.concatenate([[0], self.labels + 1]).astype(np.int64)
        return lut[self.instances]


@dataclass(frozen=True)
class SceneSettings:
    """How scenes are drawn (every field is part of the cache key)."""

    seed: int = 0
    canvas: tuple[int, ...] = (96, 112, 128)  # side lengths drawn per scene (multiples of 16: every stride divides them)
    min_objects: int = 2
    max_objects: int = 6
    object_size: tuple[int, int] = (24, 52)  # the long side of a placed object, pixels
    max_occlusion: float = 0.35  # no object loses more than this share of its pixels to later ones
    distractors: tuple[int, int] = (2, 6)

    def check(self) -> None:
        if not self.canvas or any(c < 32 for c in self.canvas):
            raise SceneError(f"data.canvas={list(self.canvas)} must list canvas sizes of at least 32 px")
        if not 1 <= self.min_objects <= self.max_objects:
            raise SceneError(f"data.min_objects={self.min_objects}, data.max_objects={self.max_objects}: need 1 <= min <= max")
        if len(self.object_size) != 2:
            raise SceneError(f"data.object_size={list(self.object_size)} must be [low, high]")
        lo, hi = self.object_size
        if not 8 <= lo <= hi <= min(self.canvas):
            raise SceneError(f"data.object_size={[lo, hi]} must be 8 <= low <= high <= the smallest canvas ({min(self.canvas)})")
        if len(self.distractors) != 2 or not 0 <= self.distractors[0] <= self.distractors[1]:
            raise SceneError(f"data.distractors={list(self.distractors)} must be [low, high] with 0 <= low <= high")
        if not 0.0 <= self.max_occlusion < 1.0:
            raise SceneError(f"data.max_occlusion={self.max_occlusion} must be in [0, 1)")


# ---------------------------------------------------------------- objects
def read_idx(path: Path) -> np.ndarray:
    """An IDX array of unsigned bytes (the MNIST file format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise SceneError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise SceneError(f"{path}: truncated IDX file ({arr.size} values, header says {int(np.prod(dims))})")
    return arr.reshape(dims)


def find_idx(root: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def fashion_mnist_files(root: str | Path | None = None) -> dict[str, Path] | None:
    """The four Fashion-MNIST IDX files under ``root`` (or ``root/FashionMNIST/raw``, torchvision's layout), else Debian's path."""
    roots = [Path(root), Path(root) / "FashionMNIST" / "raw"] if root else [Path(p) for p in FASHION_MNIST_DIRS]
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for r in roots:
        files = {s: find_idx(r, s) for s in stems}
        if all(files.values()):
            return files  # type: ignore[return-value]
    return None


def _fill(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=1)) | mask


@functools.lru_cache(maxsize=4)  # decoded once per process (about a second for the 60,000 training images)
def fashion_mnist_objects(split: str, root: str | Path | None = None) -> ObjectSet:
    """Fashion-MNIST's ``split`` (train: 60,000, test: 10,000) as grey objects, the mask where the garment is (pixels above 8/255, holes filled)."""
    files = fashion_mnist_files(root)
    if files is None:
        raise SceneError(
            f"data.root={str(root or FASHION_MNIST_DIRS[0])!r} has no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
            "install the Debian package dataset-fashion-mnist, or pass data.objects=DIR with your own object crops"
        )
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(files[f"{prefix}-images-idx3-ubyte"])
    labels = read_idx(files[f"{prefix}-labels-idx1-ubyte"]).astype(np.int64)
    ident = "fashion-mnist:" + ",".join(f"{p.name}:{p.stat().st_size}" for p in files.values())
    return ObjectSet(images, None, labels, list(FASHION_MNIST_CLASSES), ident)


def _split_of(name: str, test_share: float = 0.2) -> str:
    """A crop's split, from a hash of its path inside the folder: stable as files are added."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64
    return "test" if h < test_share else "train"


def _object_mask(rgba: np.ndarray, has_alpha: bool, tolerance: int = 24) -> np.ndarray:
    """From the alpha channel where there is one (alpha above half); else every pixel farther than ``tolerance``
    (per channel, 0-255) from the background colour, the median of the crop's border pixels. Holes are filled."""
    if has_alpha:
        return rgba[..., 3] > 127
    rgb = rgba[..., :3].astype(np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    return _fill(np.abs(rgb - background).max(-1) > tolerance)


def folder_objects(root: str | Path, split: str) -> ObjectSet:
    """The user's object crops: ``root/<class>/*.png`` (an ImageFolder), grey or RGB. A crop is in the test split
    when a hash of its path says so (about 20%), so test scenes show crops no training scene holds."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise SceneError(f"data.objects={str(root)!r} is not a directory (expected one sub-folder of object crops per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise SceneError(f"data.objects={str(root)!r} has no class sub-folders (expected DIR/<class>/*.png)")
    images, masks, labels, ident = [], [], [], []
    for c, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise SceneError(f"data.objects: class folder {root / name} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for p in files:
            rel = p.relative_to(root).as_posix()
            if _split_of(rel) != split:
                continue
            try:
                with Image.open(p) as im:
                    grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
                    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
                    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as e:
                raise SceneError(f"data.objects: cannot read image file {p} ({e.__class__.__name__})") from None
            mask = _object_mask(rgba, has_alpha)
            if mask.sum() < 16:
                raise SceneError(
                    f"data.objects: {p} has fewer than 16 object pixels (mask from {'alpha' if has_alpha else 'background colour'})"
                )
            images.append(rgba[..., 0] if grey else rgba[..., :3])
            masks.append(mask)
            labels.append(c)
            ident.append(f"{rel}:{p.stat().st_size}:{p.stat().st_mtime_ns}")
    if not images:
        raise SceneError(
            f"data.objects={str(root)!r}: no crop falls in the {split} split (about 20% of crops, by a hash of their paths, are test crops); add crops"
        )
    digest = hashlib.sha256("\n".join(ident).encode()).hexdigest()
    return ObjectSet(images, masks, np.array(labels, dtype=np.int64), classes, f"folder:{root.resolve()}:{digest}")


# ---------------------------------------------------------------- drawing
def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    if a.dtype == bool:  # a mask: resized smoothly, then cut at half
        return np.asarray(Image.fromarray(a.astype(np.uint8) * 255).resize((w, h), Image.BILINEAR)) > 127
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Band-limited noise: a ``cells`` x ``cells`` grid of values in [0, 1] upsampled bilinearly to ``size``."""
    import torch

    grid = torch.from_numpy(rng.random((1, channels, cells, cells), dtype=np.float32))
    up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)
    return up[0].permute(1, 2, 0).numpy()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour field, textured with noise at two scales and faint stripes at a random angle."""
    base = 0.15 + 0.7 * _smooth_noise(rng, size, int(rng.integers(2, 5)), 3)
    texture = _smooth_noise(rng, size, int(rng.integers(8, 24)), 1) - 0.5
    fine = rng.normal(0.0, 1.0, (size, size, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)[..., None]
    img = base + rng.uniform(0.1, 0.35) * texture + rng.uniform(0.0, 0.04) * fine + rng.uniform(0.0, 0.08) * stripes
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _colour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """An object crop as float RGB: a grey crop takes a random colour (its shading kept); an RGB crop a brightness jitter."""
    if image.ndim == 2:
        tint = rng.uniform(0.25, 1.0, 3).astype(np.float32)
        g = image.astype(np.float32)[..., None] / 255.0
        return np.clip(0.1 + 0.9 * g * tint + rng.uniform(-0.05, 0.05), 0.0, 1.0)
    return np.clip(image.astype(np.float32) / 255.0 * rng.uniform(0.8, 1.2), 0.0, 1.0)


def _placed(rng: np.random.Generator, objects: ObjectSet, k: int, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Object ``k`` cropped to its mask's box, scaled so its long side is ``long_side``, randomly mirrored: (rgb, mask)."""
    mask = objects.mask(k)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    img, m = objects.images[k][y0:y1, x0:x1], mask[y0:y1, x0:x1]
    h, w = m.shape
    s = long_side / max(h, w)
    h, w = max(4, round(h * s)), max(4, round(w * s))
    rgb, m = _colour(rng, _resize(img, h, w)), _resize(m, h, w)
    if rng.random() < 0.5:
        rgb, m = rgb[:, ::-1], m[:, ::-1]
    return rgb, m


def draw_scene(objects: ObjectSet, rng: np.random.Generator, settings: SceneSettings) -> Scene:
    """One scene (see the module docstring); ``objects`` are this split's object pool."""
    size = int(rng.choice(settings.canvas))
    image = _background(rng, size)
    # distractors: a fragment (a third to two thirds of each side) of a random object, under the objects
    for _ in range(int(rng.integers(settings.distractors[0], settings.distractors[1] + 1))):
        rgb, m = _placed(rng, objects, int(rng.integers(len(objects))), int(rng.integers(*settings.object_size)))
        h, w = m.shape
        fh, fw = max(3, int(h * rng.uniform(0.33, 0.66))), max(3, int(w * rng.uniform(0.33, 0.66)))
        oy, ox = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
        rgb, m = rgb[oy : oy + fh, ox : ox + fw], m[oy : oy + fh, ox : ox + fw]
        y, x = int(rng.integers(0, size - fh + 1)), int(rng.integers(0, size - fw + 1))
        region = image[y : y + fh, x : x + fw]
        region[m] = rgb[m]
    instances = np.zeros((size, size), dtype=np.uint8)
    areas: list[int] = []
    labels: list[int] = []
    want = int(rng.integers(settings.min_objects, settings.max_objects + 1))
    for _ in range(want * 8):  # placement tries
        if len(labels) == want:
            break
        k = int(rng.integers(len(objects)))
        rgb, m = _placed(rng, objects, k, int(rng.integers(settings.object_size[0], settings.object_size[1] + 1)))
        h, w = m.shape
        if h > size or w > size:
            continue
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        covered = instances[y : y + h, x : x + w][m]
        if covered.any():
            lost = np.bincount(covered, minlength=len(labels) + 1)[1:]
            visible = np.bincount(instances.ravel(), minlength=len(labels) + 1)[1:]
            if np.any((visible - lost) < (1.0 - settings.max_occlusion) * np.array(areas)):
                continue
        image[y : y + h, x : x + w][m] = rgb[m]
        instances[y : y + h, x : x + w][m] = len(labels) + 1
        areas.append(int(m.sum()))
        labels.append(int(objects.labels[k]))
    image = np.clip(image + rng.normal(0.0, 0.015, image.shape).astype(np.float32), 0.0, 1.0)
    boxes = []
    for i in range(len(labels)):
        ys, xs = np.nonzero(instances == i + 1)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return Scene(
        (image * 255.0 + 0.5).astype(np.uint8),
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(labels, dtype=np.int64),
        instances,
        np.array(areas, dtype=np.int64),
    )


def draw_scenes(objects: ObjectSet, split: str, count: int, settings: SceneSettings) -> Iterator[Scene]:
    """Scenes ``0 .. count-1`` of ``split``, each from its own generator (more scenes keep the first ones)."""
    for i in range(count):
        yield draw_scene(objects, np.random.default_rng([settings.seed, SPLITS[split], i]), settings)


# ---------------------------------------------------------------- the cached set
def _cache_dir() -> Path:
    return Path(os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser() / "scenes"


def cache_key(identity: str, split: str, count: int, settings: SceneSettings) -> str:
    blob = json.dumps({"version": VERSION, "objects": identity, "split": split, "count": count, **settings.__dict__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _pack(scenes: Sequence[Scene]) -> dict[str, np.ndarray]:
    side = max(s.image.shape[0] for s in scenes)
    n = len(scenes)
    images = np.zeros((n, side, side, 3), dtype=np.uint8)
    instances = np.zeros((n, side, side), dtype=np.uint8)
    sizes = np.zeros((n, 2), dtype=np.int32)
    for i, s in enumerate(scenes):
        h, w = s.instances.shape
        images[i, :h, :w], instances[i, :h, :w], sizes[i] = s.image, s.instances, (h, w)
    counts = np.array([len(s.labels) for s in scenes], dtype=np.int64)
    return {
        "images": images,
        "instances": instances,
        "sizes": sizes,
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "boxes": np.concatenate([s.boxes for s in scenes]).astype(np.float32),
        "labels": np.concatenate([s.labels for s in scenes]).astype(np.int64),
        "areas": np.concatenate([s.areas for s in scenes]).astype(np.int64),
    }


def _unpack(arrays: dict[str, np.ndarray]) -> list[Scene]:
    out = []
    o = arrays["offsets"]
    for i, (h, w) in enumerate(arrays["sizes"]):
        out.append(
            Scene(
                arrays["images"][i, :h, :w].copy(),
                arrays["boxes"][o[i] : o[i + 1]].copy(),
                arrays["labels"][o[i] : o[i + 1]].copy(),
                arrays["instances"][i, :h, :w].copy(),
                arrays["areas"][o[i] : o[i + 1]].copy(),
            )
        )
    return out


def scene_set(objects: ObjectSet, split: str, count: int, settings: SceneSettings, progress: bool = False) -> list[Scene]:
    """``count`` scenes of ``split``, from the cache when this exact set was drawn before, else drawn and cached."""
    settings.check()
    if count < 1:
        raise SceneError(f"data.{split}_scenes={count} must be a positive integer")
    path = _cache_dir() / f"{split}-{cache_key(objects.identity, split, count, settings)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                return _unpack({k: npz[k] for k in npz.files})  # each npz[k] reads the member again: once each
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: draw the set again and replace it
    from tqdm import tqdm

    scenes = list(
        tqdm(
            draw_scenes(objects, split, count, settings),
            total=count,
            desc=f"drawing {split} scenes",
            disable=None if progress else True,
            leave=False,
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.savez(f, **_pack(scenes)))
    return scenes


def objects_for(split: str, objects_dir: str | Path | None = None, fashion_root: str | Path | None = None) -> ObjectSet:
    """The object pool of ``split``: the user's crops under ``objects_dir``, else Fashion-MNIST's split."""
    return folder_objects(objects_dir, split) if objects_dir else fashion_mnist_objects(split, fashion_root)


def settings_from(cfg: Any) -> SceneSettings:
    """The scene settings of a ``data=scenes`` config node, checked (one line naming the field on bad input): each value
    against :data:`SCENE_SPECS`, then the settings together (:meth:`SceneSettings.check`)."""
    try:
        check_values(cfg, SCENE_SPECS, "data")
    except ConfigError as e:
        raise SceneError(str(e)) from None
    d = SceneSettings()
    s = SceneSettings(
        seed=int(cfg.get("seed", d.seed)),
        canvas=tuple(cfg.get("canvas", d.canvas)),
        min_objects=int(cfg.get("min_objects", d.min_objects)),
        max_objects=int(cfg.get("max_objects", d.max_objects)),
        object_size=tuple(cfg.get("object_size", d.object_size)),  # type: ignore[arg-type]
        max_occlusion=float(cfg.get("max_occlusion", d.max_occlusion)),
        distractors=tuple(cfg.get("distractors", d.distractors)),  # type: ignore[arg-type]
    )
    s.check()
    return s


def load_split(cfg: Any, split: str, progress: bool = False) -> tuple[list[Scene], list[str]]:
    """The ``split`` scenes a ``data=scenes`` node asks for (``data.train_scenes`` / ``data.test_scenes``) and the class names."""
    settings = settings_from(cfg)
    count = int(cfg.get(f"{split}_scenes", 4000 if split == "train" else 1000))
    objects = objects_for(split, cfg.get("objects"), cfg.get("root"))
    return scene_set(objects, split, count, settings, progress), list(objects.classes)


@dataclass(frozen=True)
class SceneData:
    """What a ``data=scenes`` node gives a task: the training and test scenes, the class names and the data card's facts."""

    train: list[Scene]
    test: list[Scene]
    classes: list[str]
    source: dict[str, Any]
    tile_size: int  # the largest canvas: one training tile per scene, the smaller canvases padded


def load_scenes(cfg: Any) -> SceneData:
    """Both splits of a ``data=scenes`` node (drawn or read from the cache, with a progress bar while drawn)."""
    train, classes = load_split(cfg, "train", progress=True)
    test, _ = load_split(cfg, "test", progress=True)
    source = {
        "name": "scenes",
        "objects": str(cfg.get("objects") or "fashion-mnist (Debian dataset-fashion-mnist; test scenes from its test split)"),
        "seed": int(cfg.get("seed", 0)),
        "train_scenes": len(train),
        "test_scenes": len(test),
        "test_objects": int(sum(len(s.labels) for s in test)),
    }
    return SceneData(train, test, classes, source, max(settings_from(cfg).canvas))
