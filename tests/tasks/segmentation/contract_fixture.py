"""Segmentation's contract fixture: twelve 48x48 noise images with discs and squares as a masks folder,
32-px tiles, a 3-layer path of 2-node cells 4 channels wide; broken folders and bad values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from fixtures import BadData, TaskFixture, contract_fixture
from helpers.shapes import make_shapes
from PIL import Image

from zoo.config_values import ConfigError


def _empty_images(root: Path) -> list[str]:
    (root / "images").mkdir()
    (root / "masks").mkdir()
    return [f"data.root={root}"]


def _shapes_then(edit: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def write(root: Path) -> list[str]:
        make_shapes(root, n=4, size=32)
        edit(root)
        return [f"data.root={root}"]

    return write


def _resize_mask(root: Path) -> None:
    Image.fromarray(np.zeros((30, 32), np.uint8)).save(root / "masks" / "001.png")


def _class_out_of_range(root: Path) -> None:
    m = np.zeros((32, 32), np.uint8)
    m[0, 0] = 7
    Image.fromarray(m).save(root / "masks" / "002.png")


@contract_fixture("segmentation")
def segmentation(root: Path) -> TaskFixture:
    data = make_shapes(root / "shapes", n=12, size=48)
    return TaskFixture(
        overrides=[
            "task=segmentation",
            "data=masks",
            f"data.root={data}",
            "data.tile_size=32",
            "space.steps=2",
            "space.layers=3",
            *(
                f"task.{part}.{key}={value}"
                for part in ("model", "estimate_model", "supernet")
                for key, value in (("init_channels", 4), ("aspp_channels", 8), ("decoder_channels", 8))
            ),
            "task.baseline.enabled=false",
            "trainer.epochs=2",
            "trainer.estimate_epochs=1",
            "trainer.batch_size=4",
            "progress=false",
        ],
        bad_data=[
            BadData("empty folder", "{root}/images: no images", write=_empty_images),
            BadData("mask size", "{root}/masks/001.png: mask is 30x32 but its image", write=_shapes_then(_resize_mask)),
            BadData(
                "class out of range",
                "{root}/masks/002.png: class index 7 is out of range; {root}/classes.txt names 3 classes (0..2)",
                write=_shapes_then(_class_out_of_range),
            ),
            BadData(
                "image without mask", "{root}/images/003.png: no mask", write=_shapes_then(lambda d: (d / "masks" / "003.png").unlink())
            ),
            BadData(
                "tile too small",
                "data.tile_size=8 is invalid; allowed: an integer >= 16",
                overrides=("data.tile_size=8",),
                error=ConfigError,
            ),
            BadData(
                "detection data",
                "data=coco is not segmentation data; allowed with task=segmentation: scenes, nuclei, masks, voc_seg",
                overrides=("data=coco",),
                error=ConfigError,
            ),
        ],
    )
