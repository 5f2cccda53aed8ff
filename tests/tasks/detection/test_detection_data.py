"""Detection data: deepforest's trees, COCO-json and Pascal-VOC loaders (valid and broken input), tiling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tasks.detection.data import Annotated, load, load_coco, load_trees, load_voc, tile
from zoo.task import DataError


def test_trees_load_with_every_box() -> None:
    items, classes = load_trees()
    counts = {i.name: len(i.boxes) for i in items}
    # the box counts of deepforest's XML files (<object> elements)
    assert counts == {
        "2019_YELL_2_528000_4978000_image_crop2": 574,
        "2019_YELL_2_541000_4977000_image_crop": 279,
        "OSBS_029": 61,
        "SOAP_061": 37,
    }
    assert classes == ["tree"]
    osbs = next(i for i in items if i.name == "OSBS_029")
    assert osbs.image.shape == (400, 400, 3) and osbs.image.dtype == np.uint8
    assert osbs.boxes[0].tolist() == [203, 67, 227, 90]  # first <object> of OSBS_029.xml
    data = load(OmegaConf.create({"name": "trees", "scale": 0.5, "tile_size": 128}))
    held = "OSBS_029"
    assert [t.name for t in data.test] == [held] and len(data.test[0].boxes) == 61
    assert data.test[0].image.shape == (200, 200, 3)  # 400x400 halved
    assert all(t.image.shape == (128, 128, 3) for t in data.train)
    assert {t.name.split("@")[0] for t in data.train} == set(counts) - {held}
    n_train = sum(len(t.boxes) for t in data.train)
    assert 0.9 * (951 - 61) <= n_train <= 1.3 * (951 - 61)  # tiles cut a few crowns off, edge-aligned tiles repeat a few


def test_tile_clips_boxes_and_drops_mostly_outside_ones() -> None:
    img = np.zeros((100, 150, 3), np.uint8)
    boxes = np.array([[10, 10, 30, 30], [45, 45, 70, 60], [90, 5, 110, 20]], np.float32)
    tiles = tile(Annotated("x", img, boxes, np.array([0, 0, 0])), 50)
    assert len(tiles) == 2 * 3
    first = tiles[0]  # x 0..50, y 0..50: box 0 whole, box 1 only 5x5 of 25x15 visible -> dropped
    assert first.boxes.tolist() == [[10, 10, 30, 30]]
    centre = next(t for t in tiles if t.name == "x@50,0")  # box 2 (90..110) is 50% inside x 50..100 -> kept, clipped
    assert centre.boxes.tolist() == [[40, 5, 50, 20]]


def _image(path: Path, w: int = 40, h: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def _coco(root: Path, **change) -> Path:
    _image(root / "images" / "a.png")
    _image(root / "images" / "b.png")
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}, {"id": 2, "file_name": "b.png", "width": 40, "height": 30}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
            {"id": 11, "image_id": 2, "category_id": 9, "bbox": [20, 10, 20, 20]},
        ],
        "categories": [{"id": 7, "name": "car"}, {"id": 9, "name": "boat"}],
    }
    for k, v in change.items():
        data[k] = v
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def test_coco_loader_accepts_valid_files(tmp_path: Path) -> None:
    items, classes = load_coco(_coco(tmp_path))
    assert classes == ["car", "boat"]
    assert [i.name for i in items] == ["a", "b"]
    assert items[0].boxes.tolist() == [[2, 3, 12, 8]] and items[0].labels.tolist() == [0]
    assert items[1].boxes.tolist() == [[20, 10, 40, 30]] and items[1].labels.tolist() == [1]


def test_coco_loader_rejects_a_missing_image_file(tmp_path: Path) -> None:
    _coco(tmp_path)
    (tmp_path / "images" / "b.png").unlink()
    with pytest.raises(DataError) as e:
        load_coco(tmp_path)
    msg = str(e.value)
    assert "annotations.json image id=2" in msg and "b.png not found" in msg and "\n" not in msg


def test_coco_loader_rejects_a_box_outside_the_image(tmp_path: Path) -> None:
    anns = [{"id": 10, "image_id": 1, "category_id": 7, "bbox": [35, 3, 10, 5]}]
    with pytest.raises(
        DataError,
        match=r"annotations.json annotation id=10 \(image id=1 a.png\): box \[35.0, 3.0, 45.0, 8.0\] lies outside the 40x30 image",
    ):
        load_coco(_coco(tmp_path, annotations=anns))


def test_coco_loader_rejects_an_unknown_category(tmp_path: Path) -> None:
    anns = [{"id": 12, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}]
    with pytest.raises(DataError, match=r"annotations.json annotation id=12: category_id 3 is unknown; allowed: 7, 9"):
        load_coco(_coco(tmp_path, annotations=anns))


VOC = """<annotation><filename>{file}</filename><size><width>40</width><height>30</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = "<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"


def _voc(root: Path, objects: dict[str, list[tuple[str, tuple[int, int, int, int]]]]) -> Path:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for stem, objs in objects.items():
        _image(root / "JPEGImages" / f"{stem}.png")
        xml = VOC.format(file=f"{stem}.png", objects="".join(OBJ.format(name=n, b=b) for n, b in objs))
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    return root


def test_voc_loader_accepts_valid_files(tmp_path: Path) -> None:
    items, classes = load_voc(_voc(tmp_path, {"a": [("dog", (1, 2, 10, 12)), ("cat", (5, 5, 40, 30))], "b": [("cat", (0, 0, 3, 3))]}))
    assert classes == ["dog", "cat"]
    assert items[0].boxes.tolist() == [[1, 2, 10, 12], [5, 5, 40, 30]] and items[0].labels.tolist() == [0, 1]
    assert items[1].labels.tolist() == [1]


def test_voc_loader_rejects_a_missing_image_file(tmp_path: Path) -> None:
    _voc(tmp_path, {"a": [("dog", (1, 2, 10, 12))], "b": [("dog", (1, 2, 10, 12))]})
    (tmp_path / "JPEGImages" / "b.png").unlink()
    with pytest.raises(DataError, match=r"Annotations/b.xml <filename>b.png</filename>: image file .*b.png not found"):
        load_voc(tmp_path)


def test_voc_loader_rejects_a_box_outside_the_image(tmp_path: Path) -> None:
    _voc(tmp_path, {"a": [("dog", (1, 2, 10, 12)), ("dog", (30, 20, 41, 25))]})
    with pytest.raises(
        DataError, match=r"Annotations/a.xml object #1 \(dog\): box \[30.0, 20.0, 41.0, 25.0\] lies outside the 40x30 image"
    ):
        load_voc(tmp_path)


def test_voc_loader_rejects_an_unknown_category(tmp_path: Path) -> None:
    _voc(tmp_path, {"a": [("dog", (1, 2, 10, 12)), ("horse", (1, 2, 10, 12))]})
    with pytest.raises(DataError, match=r"Annotations/a.xml object #1: category 'horse' is unknown; allowed: dog, cat"):
        load_voc(tmp_path, classes=["dog", "cat"])


def test_detection_rejects_classification_data() -> None:
    with pytest.raises(DataError, match="data=digits is not detection data; allowed with task=detection: scenes, trees, coco, voc"):
        load(OmegaConf.create({"name": "digits"}))
