"""Classification's contract fixture: an ImageFolder of 40 handwritten digits (4 classes), read
as 8x8 grayscale, and a 3-cell network 4 channels wide; broken folders and bad values."""

from __future__ import annotations

from pathlib import Path

from fixtures import BadData, TaskFixture, contract_fixture
from helpers.data import digit_folder

from zoo.config_values import ConfigError


def _images(root: Path, classes: dict[str, int], garbage: bool = False) -> list[str]:
    """``classes[name]`` small PNGs in each class directory ``name`` (or .png files that are not images)."""
    from PIL import Image

    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            if garbage:
                (root / name / f"{i}.png").write_bytes(b"not an image")
            else:
                Image.new("L", (8, 8), color=40 * i).save(root / name / f"{i}.png")
    return [f"data.root={root}"]


@contract_fixture("classification")
def classification(root: Path) -> TaskFixture:
    folder = digit_folder(root / "digits", per_class=10)
    return TaskFixture(
        overrides=[
            "task=classification",
            "data=folder",
            f"data.root={folder}",
            "data.image_size=8",
            "data.grayscale=true",
            "task.model.init_channels=4",
            "task.model.layers=3",
            "task.model.auxiliary=true",
            "task.estimate_model.init_channels=4",
            "task.estimate_model.layers=2",
            "task.supernet.init_channels=4",
            "task.supernet.layers=2",
            "task.baseline.enabled=false",
            "trainer.epochs=2",
            "trainer.estimate_epochs=1",
            "trainer.batch_size=8",
            "progress=false",
        ],
        bad_data=[
            BadData("root missing", "data.root='{root}/missing' does not exist", overrides=("data.root={root}/missing",)),
            BadData(
                "empty folder",
                "data.root='{root}' is empty: expected sub-directories of images, one per class",
                write=lambda d: [f"data.root={d}"],
            ),
            BadData(
                "one class",
                "data.root='{root}' has one class ('a'); classification needs at least 2 class directories",
                write=lambda d: _images(d, {"a": 5}),
            ),
            BadData(
                "unreadable images",
                "data.root='{root}' has no readable images (the first: {root}/a/0.png, UnidentifiedImageError)",
                write=lambda d: _images(d, {"a": 3, "b": 3}, garbage=True),
            ),
            BadData(
                "too few per class",
                "data=folder has too few images for a search-valid split: class 'a' has 2; allowed: at least 3",
                write=lambda d: _images(d, {"a": 2, "b": 2}),
            ),
            BadData(
                "image_size too small",
                "data.image_size=2 is invalid; allowed: an integer >= 4",
                overrides=("data.image_size=2",),
                error=ConfigError,
            ),
            BadData(
                "detection data",
                "data=coco is not classification data; allowed with task=classification: digits, fashion_mnist, folder",
                overrides=("data=coco",),
                error=ConfigError,
            ),
        ],
    )
