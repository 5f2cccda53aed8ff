"""Detection data with no download, and the user's COCO-json / Pascal-VOC data.

* ``trees``: the annotated aerial RGB images of tree crowns shipped in the PyPI package
  ``deepforest`` (Weinstein et al., "DeepForest", Methods Ecol. Evol. 2020), read directly
  from its Pascal-VOC XML files (the package is never imported). One image is held out
  for testing; the others are tiled into training crops.
* ``coco``: ``root/annotations.json`` (``images``, ``annotations`` with ``bbox`` = x, y,
  width, height in pixels, ``categories``) and the images under ``root/images`` (or where
  ``file_name`` points, relative to ``root``).
* ``voc``: Pascal-VOC XML files under ``root/Annotations`` (or ``root``) with their images
  under ``root/JPEGImages`` (or beside the XML).

Loaders reject broken input with one :class:`DataError` line naming the file and the
record: a missing image file, a box outside its image, an unknown category.

:class:`TileDataset` serves the tiles as tensors (flipped when augmenting) and :func:`collate`
batches them with boxes and labels padded.
"""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.task import AugmentedItems, DataError

TREES_TEST_IMAGE = "OSBS_029"
DATA_SETS = ("scenes", "trees", "coco", "voc")


@dataclass
class Annotated:
    """One image (H, W, 3) uint8 with ``boxes`` (n, 4) float32 x1, y1, x2, y2 in pixels and ``labels`` (n,) int64."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


@dataclass
class DetectionData:
    train: list[Annotated]
    test: list[Annotated]
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)


def _read_image(path: Path, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"{where}: image file {path} not found")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{where}: cannot read image file {path} ({e.__class__.__name__})") from None


def _check_box(box: Sequence[float], width: int, height: int, where: str) -> None:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise DataError(f"{where}: box {list(box)} is empty (needs x2 > x1 and y2 > y1)")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise DataError(f"{where}: box {list(box)} lies outside the {width}x{height} image")


# ---------------------------------------------------------------- Pascal VOC
def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DataError(f"{where}: missing <{tag}>")
    return child.text.strip()


def read_voc_file(
    xml_path: Path, image_dirs: Sequence[Path], classes: list[str], fixed_classes: bool, label_map: dict[str, str] | None = None
) -> Annotated:
    """One VOC XML file; unknown names extend ``classes`` unless ``fixed_classes``."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise DataError(f"{xml_path}: not valid XML ({e})") from None
    filename = _text(root, "filename", str(xml_path))
    candidates = [d / filename for d in image_dirs]
    image_path = next((p for p in candidates if p.is_file()), candidates[0])
    image = _read_image(image_path, f"{xml_path} <filename>{filename}</filename>")
    H, W = image.shape[:2]
    boxes, labels = [], []
    for k, obj in enumerate(root.iter("object")):
        where = f"{xml_path} object #{k}"
        name = _text(obj, "name", where)
        name = (label_map or {}).get(name, name)
        if name not in classes:
            if fixed_classes:
                raise DataError(f"{where}: category {name!r} is unknown; allowed: {', '.join(classes)}")
            classes.append(name)
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(f"{where}: missing <bndbox>")
        try:
            box = [float(_text(bb, t, where)) for t in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise DataError(f"{where}: <bndbox> values are not numbers") from None
        _check_box(box, W, H, f"{where} ({name})")
        boxes.append(box)
        labels.append(classes.index(name))
    return Annotated(image_path.stem, image, np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(labels, dtype=np.int64))


def load_voc(root: str | Path | None, classes: Sequence[str] | None = None) -> tuple[list[Annotated], list[str]]:
    if not root:
        raise DataError("data.root is not set; data=voc needs data.root=DIR with Annotations/*.xml and JPEGImages/")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root={str(root)!r} is not a directory")
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        raise DataError(f"data.root={str(root)!r} has no Pascal-VOC .xml files (in {ann_dir})")
    names = list(classes) if classes else []
    dirs = [root / "JPEGImages", ann_dir, root]
    items = [read_voc_file(f, dirs, names, fixed_classes=bool(classes)) for f in files]
    return items, names


# ---------------------------------------------------------------- COCO json
def load_coco(root: str | Path | None, annotations: str = "annotations.json", images: str = "images") -> tuple[list[Annotated], list[str]]:
    if not root:
        raise DataError("data.root is not set; data=coco needs data.root=DIR with annotations.json and images/")
    root = Path(root)
    ann_path = root / annotations
    if not ann_path.is_file():
        raise DataError(f"{ann_path}: COCO annotation file not found")
    try:
        data = json.loads(ann_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{ann_path}: not valid JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{ann_path}: field {key!r} is missing or not a list")
    cats = {}
    for k, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise DataError(f"{ann_path}: categories[{k}] needs 'id' and 'name'")
        cats[c["id"]] = str(c["name"])
    cat_ids = sorted(cats)
    classes = [cats[i] for i in cat_ids]
    per_image: dict[Any, list[tuple[list[float], int]]] = {}
    info: dict[Any, dict[str, Any]] = {}
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DataError(f"{ann_path}: images[{k}] needs 'id' and 'file_name'")
        info[im["id"]] = im
        per_image[im["id"]] = []
    for k, a in enumerate(data["annotations"]):
        rid = a.get("id", k) if isinstance(a, dict) else k
        where = f"{ann_path} annotation id={rid}"
        if not isinstance(a, dict) or not {"image_id", "category_id", "bbox"} <= set(a):
            raise DataError(f"{where}: needs 'image_id', 'category_id' and 'bbox'")
        if a["category_id"] not in cats:
            raise DataError(f"{where}: category_id {a['category_id']!r} is unknown; allowed: {', '.join(str(i) for i in cat_ids)}")
        if a["image_id"] not in info:
            raise DataError(f"{where}: image_id {a['image_id']!r} is not in 'images'")
        bbox = a["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise DataError(f"{where}: bbox {bbox!r} must be [x, y, width, height]")
        x, y, w, h = (float(v) for v in bbox)
        im = info[a["image_id"]]
        if "width" in im and "height" in im:
            _check_box([x, y, x + w, y + h], int(im["width"]), int(im["height"]), f"{where} (image id={a['image_id']} {im['file_name']})")
        per_image[a["image_id"]].append(([x, y, x + w, y + h], cat_ids.index(a["category_id"])))
    items = []
    for image_id, im in info.items():
        where = f"{ann_path} image id={image_id}"
        candidates = [root / images / im["file_name"], root / im["file_name"]]
        path = next((p for p in candidates if p.is_file()), candidates[0])
        image = _read_image(path, where)
        H, W = image.shape[:2]
        for box, _ in per_image[image_id]:
            _check_box(box, W, H, f"{where} ({im['file_name']})")
        boxes = np.array([b for b, _ in per_image[image_id]], dtype=np.float32).reshape(-1, 4)
        labels = np.array([c for _, c in per_image[image_id]], dtype=np.int64)
        items.append(Annotated(Path(im["file_name"]).stem, image, boxes, labels))
    if not items:
        raise DataError(f"{ann_path}: 'images' is empty")
    return items, classes


# ---------------------------------------------------------------- trees (deepforest's files)
def deepforest_data_dir() -> Path:
    """``site-packages/deepforest/data`` located without importing the package."""
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "data=trees reads the annotated images shipped in the PyPI package deepforest; "
            "install it with: pip install --no-deps deepforest==2.1.0 (or pass data.root=DIR with its data files)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_trees(root: str | Path | None = None) -> tuple[list[Annotated], list[str]]:
    """Every deepforest XML with its image, all crowns (Tree, Alive, Dead) as one class ``tree``."""
    d = Path(root) if root else deepforest_data_dir()
    files = sorted(d.glob("*.xml"))
    if not files:
        raise DataError(f"{d}: no Pascal-VOC .xml files (expected deepforest's annotated images)")
    classes = ["tree"]
    mapping = {"Tree": "tree", "Alive": "tree", "Dead": "tree"}
    return [read_voc_file(f, [d], classes, fixed_classes=True, label_map=mapping) for f in files], classes


# ---------------------------------------------------------------- scenes (zoo.scenes)
def load_scenes(data_cfg: Any) -> tuple[list[Annotated], list[Annotated], list[str], dict[str, Any], int]:
    """Generated multi-object scenes (:mod:`zoo.scenes`): their boxes and classes, the data card's facts, and the tile
    size (the largest canvas: each training scene is one tile, the smaller ones padded)."""
    from zoo.scenes import load_scenes as scenes

    d = scenes(data_cfg)
    as_items = lambda split, items: [Annotated(f"{split}{i:05d}", s.image, s.boxes, s.labels) for i, s in enumerate(items)]  # noqa: E731
    return as_items("train", d.train), as_items("test", d.test), d.classes, d.source, d.tile_size


# ---------------------------------------------------------------- tiling and splits
def rescale(item: Annotated, scale: float) -> Annotated:
    if scale == 1.0:
        return item
    from PIL import Image

    H, W = item.image.shape[:2]
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    image = np.array(Image.fromarray(item.image).resize((w, h), Image.BILINEAR))
    boxes = item.boxes * np.array([w / W, h / H, w / W, h / H], dtype=np.float32)
    return Annotated(item.name, image, boxes, item.labels)


def tile(item: Annotated, size: int, min_visible: float = 0.5) -> list[Annotated]:
    """Non-overlapping ``size`` x ``size`` crops covering the image (the last row/column aligned to
    its edge; smaller images give one padded crop). Boxes are clipped to the crop and kept when at
    least ``min_visible`` of their area is inside."""
    H, W = item.image.shape[:2]
    if H < size or W < size:
        pad = np.zeros((max(H, size), max(W, size), 3), dtype=np.uint8)
        pad[:H, :W] = item.image
        item = Annotated(item.name, pad, item.boxes, item.labels)
        H, W = pad.shape[:2]
    ys = sorted({min(y, H - size) for y in range(0, H, size)})
    xs = sorted({min(x, W - size) for x in range(0, W, size)})
    out = []
    area = (item.boxes[:, 2] - item.boxes[:, 0]) * (item.boxes[:, 3] - item.boxes[:, 1])
    for y in ys:
        for x in xs:
            b = item.boxes - np.array([x, y, x, y], dtype=np.float32)
            c = np.clip(b, 0, size)
            inside = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
            keep = (inside >= min_visible * np.maximum(area, 1e-6)) & (c[:, 2] - c[:, 0] >= 2) & (c[:, 3] - c[:, 1] >= 2)
            out.append(Annotated(f"{item.name}@{x},{y}", item.image[y : y + size, x : x + size].copy(), c[keep], item.labels[keep]))
    return out


def load(data_cfg: Any) -> DetectionData:
    """The configured data set, split into train (tiled) and test (whole images)."""
    name = data_cfg.name
    scale = float(data_cfg.get("scale", 1.0))
    size = int(data_cfg.get("tile_size", 256))
    source: dict[str, Any] = {"name": name}
    if name == "scenes":
        train, test, classes, source, size = load_scenes(data_cfg)
    elif name == "trees":
        items, classes = load_trees(data_cfg.get("root"))
        held = str(data_cfg.get("test_image") or TREES_TEST_IMAGE)
        if held not in [i.name for i in items]:
            raise DataError(f"data.test_image={held!r} is not one of the trees images; allowed: {', '.join(i.name for i in items)}")
        test = [i for i in items if i.name == held]
        train = [i for i in items if i.name != held]
    elif name in ("coco", "voc"):
        if name == "coco":
            items, classes = load_coco(
                data_cfg.get("root"), str(data_cfg.get("annotations", "annotations.json")), str(data_cfg.get("images", "images"))
            )
        else:
            items, classes = load_voc(data_cfg.get("root"), list(data_cfg.get("classes") or []) or None)
        if len(items) < 2:
            raise DataError(
                f"data.root={data_cfg.get('root')!r} has {len(items)} image; detection needs at least 2 (one held out for testing)"
            )
        rng = np.random.default_rng(int(data_cfg.get("split_seed", 0)))
        order = rng.permutation(len(items))
        n_test = max(1, int(round(float(data_cfg.get("test_fraction", 0.2)) * len(items))))
        test = [items[i] for i in sorted(order[:n_test])]
        train = [items[i] for i in sorted(order[n_test:])]
    else:
        raise DataError(f"data={name} is not detection data; allowed with task=detection: {', '.join(DATA_SETS)}")
    train = [t for i in train for t in tile(rescale(i, scale), size)]
    max_tiles = data_cfg.get("max_train_tiles")
    if max_tiles and len(train) > int(max_tiles):
        rng = np.random.default_rng(0)
        with_boxes = [t for t in train if len(t.boxes)]
        pool = with_boxes if len(with_boxes) >= int(max_tiles) else train
        train = [pool[i] for i in sorted(rng.permutation(len(pool))[: int(max_tiles)])]
    test = [rescale(i, scale) for i in test]
    return DetectionData(train, test, classes, {**source, "tile_size": size, "scale": scale})


# ---------------------------------------------------------------- training batches
def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)


class TileDataset(AugmentedItems[Annotated]):
    """Equal-size crops; random horizontal and vertical flips when ``augment`` (aerial images have no up)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x = to_tensor(it.image)
        boxes = torch.from_numpy(it.boxes.copy())
        H, W = x.shape[-2:]
        if self.augment:
            if self.rng.random() < 0.5:
                x = x.flip(-1)
                boxes = torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1) if len(boxes) else boxes
            if self.rng.random() < 0.5:
                x = x.flip(-2)
                boxes = torch.stack([boxes[:, 0], H - boxes[:, 3], boxes[:, 2], H - boxes[:, 1]], 1) if len(boxes) else boxes
        return x, boxes.reshape(-1, 4), torch.from_numpy(it.labels.copy())


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images stacked; boxes (N, M, 4) and labels (N, M) padded with label -1."""
    M = max(1, max(len(b) for _, b, _ in batch))
    boxes = torch.zeros(len(batch), M, 4)
    labels = torch.full((len(batch), M), -1, dtype=torch.long)
    for i, (_, b, l) in enumerate(batch):
        boxes[i, : len(b)] = b
        labels[i, : len(l)] = l
    return torch.stack([x for x, _, _ in batch]), boxes, labels
