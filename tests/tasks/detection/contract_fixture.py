"""Detection's contract fixture: ten 64x64 noise images with bright rectangles as COCO json, one
64-px tile each, and a 3-cell backbone 4 channels wide with an 8-channel neck; broken COCO data
and bad values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures import BadData, TaskFixture, contract_fixture
from helpers.data import make_rectangles

from zoo.config_values import ConfigError


def _coco(edit: Callable[[dict[str, Any], Path], None], n: int = 3) -> Callable[[Path], list[str]]:
    """A writer of ``n`` rectangle images as COCO json, then ``edit(annotations, root)`` breaks them."""

    def write(root: Path) -> list[str]:
        make_rectangles(root, n=n, size=64)
        ann = json.loads((root / "annotations.json").read_text())
        edit(ann, root)
        (root / "annotations.json").write_text(json.dumps(ann))
        return [f"data.root={root}"]

    return write


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any], Path], None]:
    def edit(ann: dict[str, Any], root: Path) -> None:
        node = ann
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _truncated_json(root: Path) -> list[str]:
    (root / "annotations.json").write_text("{")
    return [f"data.root={root}"]


@contract_fixture("detection")
def detection(root: Path) -> TaskFixture:
    data = make_rectangles(root / "rects", n=10, size=64)
    return TaskFixture(
        overrides=[
            "task=detection",
            "data=coco",
            f"data.root={data}",
            "data.tile_size=64",
            *(
                f"task.{part}.{key}={value}"
                for part in ("model", "estimate_model", "supernet")
                for key, value in (("init_channels", 4), ("layers", 3), ("neck_channels", 8), ("head_convs", 1))
            ),
            "task.baseline.enabled=false",
            "trainer.epochs=2",
            "trainer.estimate_epochs=1",
            "trainer.batch_size=4",
            "progress=false",
        ],
        bad_data=[
            BadData("no annotations", "{root}/annotations.json: COCO annotation file not found", write=lambda d: [f"data.root={d}"]),
            BadData(
                "invalid json",
                "{root}/annotations.json: not valid JSON",
                write=_truncated_json,
            ),
            BadData(
                "box outside image",
                "{root}/annotations.json annotation id=1 (image id=0 000.png): box [50.0, 50.0, 70.0, 70.0] lies outside the 64x64 image",
                write=_coco(_set(("annotations", 0, "bbox"), [50, 50, 20, 20])),
            ),
            BadData(
                "unknown category",
                "{root}/annotations.json annotation id=1: category_id 7 is unknown; allowed: 1",
                write=_coco(_set(("annotations", 0, "category_id"), 7)),
            ),
            BadData(
                "missing image file",
                "{root}/annotations.json image id=1: image file {root}/images/001.png not found",
                write=_coco(lambda ann, d: (d / "images" / "001.png").unlink()),
            ),
            BadData(
                "one image",
                "data.root='{root}' has 1 image; detection needs at least 2 (one held out for testing)",
                write=_coco(lambda ann, d: None, n=1),
            ),
            BadData(
                "tile too small",
                "data.tile_size=16 is invalid; allowed: an integer >= 32",
                overrides=("data.tile_size=16",),
                error=ConfigError,
            ),
            BadData(
                "classification data",
                "data=digits is not detection data; allowed with task=detection: scenes, trees, coco, voc",
                overrides=("data=digits",),
                error=ConfigError,
            ),
        ],
    )
