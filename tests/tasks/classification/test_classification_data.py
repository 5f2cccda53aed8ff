"""Built-in and custom classification data, and the clear errors for bad directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tasks.classification.data import load, load_digits_data, load_fashion_mnist
from zoo.task import DataError


def test_digits_is_embedded() -> None:
    d = load_digits_data()
    assert d.x.shape == (1797, 1, 8, 8) and float(d.x.max()) <= 1.0 and len(d.classes) == 10


def test_fashion_mnist_from_the_debian_package() -> None:
    d = load_fashion_mnist(max_train=500, max_test=200)
    assert d.x.shape == (500, 1, 28, 28) and d.x_test.shape == (200, 1, 28, 28)
    assert set(d.y.tolist()) <= set(range(10)) and len(set(d.y.tolist())) == 10
    assert d.classes[9] == "ankle boot"


def test_fashion_mnist_root_as_torchvision_lays_it_out(tmp_path: Path) -> None:
    """data.root=DIR finds the IDX files where torchvision's download left them (DIR/FashionMNIST/raw)."""
    import shutil

    from tasks.classification.data import FASHION_MNIST_DIRS

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in Path(FASHION_MNIST_DIRS[0]).glob("*-ubyte.gz"):
        shutil.copy(f, raw / f.name)
    ours, debian = load_fashion_mnist(str(tmp_path), max_train=300, max_test=100), load_fashion_mnist(max_train=300, max_test=100)
    assert ours.x.shape == (300, 1, 28, 28) and bool((ours.x == debian.x).all()) and bool((ours.y_test == debian.y_test).all())


def test_fashion_mnist_missing_root_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no Fashion-MNIST IDX files"):
        load_fashion_mnist(str(tmp_path))


def _write_folder(root: Path, classes: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_image_folder_loads_and_resizes(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"cat": 3, "dog": 4})
    d = load(OmegaConf.create({"name": "folder", "root": str(tmp_path), "image_size": 16}))
    assert d.x.shape == (7, 3, 16, 16) and d.classes == ["cat", "dog"] and d.y.tolist() == [0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "layout, message",
    [
        (None, "does not exist"),
        ({}, "is empty"),
        ({"only": 3}, "has one class ('only')"),
    ],
)
def test_bad_image_folders(tmp_path: Path, layout, message: str) -> None:
    root = tmp_path / "data"
    if layout is not None:
        root.mkdir()
        _write_folder(root, layout)
    with pytest.raises(DataError) as e:
        load(OmegaConf.create({"name": "folder", "root": str(root)}))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unreadable_images_are_skipped_with_one_warning_naming_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    d = load(OmegaConf.create({"name": "folder", "root": str(tmp_path)}))
    assert d.x.shape[0] == 4 and d.y.tolist() == [0, 0, 1, 1]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoo: warning: skipped 2 unreadable image(s) under") and "broken.png" in err[0]


def test_a_folder_of_only_unreadable_images_is_one_line(tmp_path: Path) -> None:
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"has no readable images \(the first: .*x.png, UnidentifiedImageError\)"):
        load(OmegaConf.create({"name": "folder", "root": str(tmp_path)}))


def test_hidden_files_and_macos_metadata_are_ignored(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "._0.png").write_bytes(b"AppleDouble metadata, not an image")
    _write_folder(tmp_path / "a" / ".thumbs", {"x": 3})
    _write_folder(tmp_path / "__MACOSX", {"a": 1})
    d = load(OmegaConf.create({"name": "folder", "root": str(tmp_path)}))
    assert d.classes == ["a", "b"] and d.x.shape[0] == 4


def test_16_bit_and_float_images_keep_their_values(tmp_path: Path) -> None:
    """PIL's convert('L') saturates 16-bit and float images; they are scaled by their range instead."""
    for c in ("deep", "float"):
        (tmp_path / c).mkdir()
    Image.fromarray(np.full((6, 6), 40000, dtype=np.uint16)).save(tmp_path / "deep" / "a.png")
    Image.fromarray(np.full((6, 6), 0.5, dtype=np.float32), mode="F").save(tmp_path / "float" / "a.tif")
    d = load(OmegaConf.create({"name": "folder", "root": str(tmp_path), "image_size": 6, "grayscale": True}))
    assert d.x.shape == (2, 1, 6, 6)
    assert float(d.x[0].mean()) == pytest.approx(40000 / 65535, abs=1e-3)
    assert float(d.x[1].mean()) == pytest.approx(0.5, abs=1e-3)
    rgb = load(OmegaConf.create({"name": "folder", "root": str(tmp_path), "image_size": 6}))
    assert rgb.x.shape == (2, 3, 6, 6) and float(rgb.x[0].mean()) == pytest.approx(40000 / 65535, abs=1e-3)


def _folder_task(root: Path):
    from zoo.__main__ import compose_config
    from zoo.space.darts_space import DartsSpace
    from zoo.task import TASKS

    cfg = compose_config(["data=folder", f"data.root={root}"])
    return TASKS.get("classification")(cfg.task, cfg.data, cfg.trainer, DartsSpace(), progress=False)


def test_too_few_images_per_class_for_the_splits_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_folder(tmp_path / "two", {"a": 2, "b": 2})
    with pytest.raises(
        DataError, match=r"^data=folder has too few images for a search-valid split: class 'a' has 2; allowed: at least 3 images per class"
    ):
        _folder_task(tmp_path / "two").setup()
    _write_folder(tmp_path / "three", {"a": 3, "b": 3})
    task = _folder_task(tmp_path / "three")
    task.setup()  # three per class is enough: one each for test, search-train and search-valid
    assert "zoo: warning: the test split has 2 images, so test accuracy moves in steps of 0.50" in capsys.readouterr().err
    assert {k: len(v[1]) for k, v in task.splits.items()} == {"search_train": 2, "search_valid": 2, "train": 4, "test": 2}
    # one small class among large ones is caught too (the splits are not empty, that class is missing from one)
    _write_folder(tmp_path / "uneven", {"a": 2, "b": 10})
    with pytest.raises(
        DataError, match=r"^data=folder has too few images for a search-valid split: class 'a' has 2; allowed: at least 3 images"
    ):
        _folder_task(tmp_path / "uneven").setup()
