"""Segmentation data: stardist's nuclei image, image/mask folders and the Pascal-VOC layout (valid and broken input), tiling and splits."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tasks.segmentation.data import DATA_SETS, VOC_CLASSES, SegImage, SegmentationData, load, positions, tile
from zoo.task import DataError


def _need_stardist() -> Path:
    """stardist's data folder (found, never imported); skipped without the package unless ZOO_REQUIRE_OPTIONAL=1."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        msg = "needs stardist's data files: pip install --no-deps stardist==0.9.2"
        if os.environ.get("ZOO_REQUIRE_OPTIONAL") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "images"


def _origin(name: str) -> tuple[int, int]:
    m = re.fullmatch(r".+_r(\d+)_c(\d+)", name)
    assert m, name
    return int(m.group(1)), int(m.group(2))


def _coverage(tiles: list[SegImage], shape: tuple[int, int]) -> np.ndarray:
    """How many of ``tiles`` (named by their origin) cover each pixel of an image of ``shape``."""
    cover = np.zeros(shape, dtype=np.int64)
    for t in tiles:
        y, x = _origin(t.name)
        h, w = t.mask.shape
        cover[y : y + h, x : x + w] += 1
    return cover


def _cfg(**kw) -> object:
    return OmegaConf.create(kw)


# ---------------------------------------------------------------- nuclei
def test_nuclei_tiles_test_region_and_search_halves() -> None:
    import tifffile

    d = _need_stardist()
    data = load(_cfg(name="nuclei"))
    assert isinstance(data, SegmentationData) and DATA_SETS == ("scenes", "nuclei", "masks", "voc_seg")
    assert data.classes == ["background", "nucleus"] and data.in_chans == 1
    # 384 training columns: 11 window columns (0..320 at stride 32) x 15 window rows (0..448)
    assert len(data.train) == 11 * 15
    assert len(data.search_train) == 5 * 15 and len(data.search_valid) == 5 * 15  # x 0..128 | x 192..320; x=160 crosses the middle
    assert all(t.image.shape == (64, 64, 1) and t.image.dtype == np.float32 for t in data.train)
    assert all(t.mask.shape == (64, 64) and t.mask.dtype == np.int64 for t in data.train)
    [test] = data.test
    assert test.image.shape == (512, 128, 1) and test.mask.shape == (512, 128) and _origin(test.name) == (0, 384)
    raw_mask = tifffile.imread(d / "mask2d.tif")
    assert np.array_equal(test.mask, (raw_mask[:, 384:] > 0).astype(np.int64))
    assert 0.0 <= min(float(t.image.min()) for t in data.train) and max(float(t.image.max()) for t in data.train) <= 1.0
    assert float(test.image.max()) <= 1.0 and float(test.image.min()) >= 0.0
    # a tile is the window its name says
    t = next(t for t in data.train if t.name == "img2d_r32_c64")
    assert np.array_equal(t.mask, (raw_mask[32:96, 64:128] > 0).astype(np.int64))
    fg = (sum(int(t.mask.sum()) for t in data.train) + int(test.mask.sum())) / (sum(t.mask.size for t in data.train) + test.mask.size)
    assert 0.1 < fg < 0.4
    assert set(np.unique(test.mask).tolist()) == {0, 1}
    # no training pixel in the test columns, every other pixel in some training tile
    cover = _coverage(data.train, (512, 512))
    assert cover[:, 384:].sum() == 0 and (cover[:, :384] > 0).all()
    # the search subsets are training tiles and share no pixel
    ids = {id(t) for t in data.train}
    assert all(id(t) in ids for t in data.search_train + data.search_valid)
    a, b = _coverage(data.search_train, (512, 512)), _coverage(data.search_valid, (512, 512))
    assert not ((a > 0) & (b > 0)).any()
    assert max(_origin(t.name)[1] for t in data.search_train) + 64 <= 192 <= min(_origin(t.name)[1] for t in data.search_valid)
    assert data.source["test_region"] == {"rows": [0, 512], "columns": [384, 512]} and data.source["name"] == "nuclei"


def test_nuclei_from_root_with_other_sizes(tmp_path: Path) -> None:
    import tifffile

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 1000, size=(48, 100), dtype=np.uint16)
    inst = np.zeros((48, 100), np.uint16)
    inst[5:15, 5:15], inst[20:30, 60:70] = 1, 7
    tifffile.imwrite(tmp_path / "img2d.tif", raw)
    tifffile.imwrite(tmp_path / "mask2d.tif", inst)
    data = load(_cfg(name="nuclei", root=str(tmp_path), tile_size=16, tile_stride=16, test_columns=30))
    # 70 training columns: x = 0, 16, 32, 48, 54 (snapped); y = 0, 16, 32; middle 35
    assert positions(70, 16, 16) == [0, 16, 32, 48, 54]
    assert len(data.train) == 5 * 3 and len(data.search_train) == 2 * 3 and len(data.search_valid) == 2 * 3
    assert data.test[0].image.shape == (48, 30, 1)
    cover = _coverage(data.train, (48, 100))
    assert cover[:, 70:].sum() == 0 and (cover[:, :70] > 0).all()
    assert np.array_equal(np.concatenate([t.mask for t in data.train if _origin(t.name) == (0, 0)]), (inst[:16, :16] > 0).astype(np.int64))
    # percentile normalisation: 1st percentile -> 0, 99.8th -> 1
    lo, hi = np.percentile(raw.astype(np.float32), [1, 99.8])
    expected = np.clip((raw[:, 70:].astype(np.float32) - lo) / (hi - lo), 0, 1)
    assert np.allclose(data.test[0].image[..., 0], expected, atol=1e-6)


def test_nuclei_without_stardist_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "stardist" else real(name, *a))
    with pytest.raises(DataError) as e:
        load(_cfg(name="nuclei"))
    assert "pip install --no-deps stardist==0.9.2" in str(e.value) and "\n" not in str(e.value)


def test_nuclei_missing_file_and_too_large_tiles(tmp_path: Path) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "img2d.tif", np.zeros((32, 64), np.uint16))
    _raises(lambda: load(_cfg(name="nuclei", root=str(tmp_path))), tmp_path / "mask2d.tif", "not found")
    tifffile.imwrite(tmp_path / "mask2d.tif", np.zeros((32, 60), np.uint16))
    _raises(lambda: load(_cfg(name="nuclei", root=str(tmp_path))), tmp_path / "mask2d.tif", "mask is 32x60 but its image")
    tifffile.imwrite(tmp_path / "mask2d.tif", np.zeros((32, 64), np.uint16))
    _raises(lambda: load(_cfg(name="nuclei", root=str(tmp_path), tile_size=32, test_columns=16)), tmp_path / "img2d.tif", "tile_size=32")


# ---------------------------------------------------------------- image / mask folders
def _raises(fn: Callable[[], object], path: Path | str, *words: str) -> str:
    """``fn`` raises a one-line DataError naming ``path`` (and holding ``words``)."""
    with pytest.raises(DataError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def _pair(root: Path, stem: str, h: int = 40, w: int = 48, seed: int = 0, gray: bool = False, suffix: str = ".png") -> np.ndarray:
    """An image with a class-1 and a class-2 rectangle (colours 200/100 on 30) and its L-mode mask; returns the mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    mask[y : y + h // 3, x : x + w // 3] = 1
    mask[h - h // 4 :, w - w // 4 :] = 2
    image = np.choose(mask, [30, 200, 100]).astype(np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image if gray else np.stack([image, image // 2, 255 - image], axis=-1)).save(root / "images" / f"{stem}{suffix}")
    Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    return mask


def test_masks_folder_loads_with_class_names_and_splits(tmp_path: Path) -> None:
    masks = {f"im{k}": _pair(tmp_path, f"im{k}", seed=k) for k in range(5)}
    (tmp_path / "classes.txt").write_text("background\ncell\ndebris\n\n")
    data = load(_cfg(name="masks", root=str(tmp_path), tile_size=32))
    assert data.classes == ["background", "cell", "debris"] and data.in_chans == 3 and data.ignore_index == 255
    # 5 images: 1 held out (0.2), of the 4 left 1 scores architectures; 40x48 -> windows y 0, 8 and x 0, 16
    [test] = data.test
    assert test.image.shape == (40, 48, 3) and np.array_equal(test.mask, masks[test.name])
    assert len(data.train) == 4 * 4 and len(data.search_train) == 3 * 4 and len(data.search_valid) == 4
    assert all(t.image.shape == (32, 32, 3) and t.mask.shape == (32, 32) for t in data.train)
    stem = lambda t: t.name.rsplit("_r", 1)[0]
    assert test.name not in {stem(t) for t in data.train}
    assert not {stem(t) for t in data.search_train} & {stem(t) for t in data.search_valid}
    assert {t.name for t in data.search_train} | {t.name for t in data.search_valid} == {t.name for t in data.train}
    t = next(t for t in data.train if t.name.endswith("_r8_c16"))
    assert np.array_equal(t.mask, masks[stem(t)][8:40, 16:48])
    expected = np.choose(masks[stem(t)][8:40, 16:48], [30, 200, 100]) / 255.0
    assert np.allclose(t.image[..., 0], expected, atol=1e-6) and t.image.dtype == np.float32
    assert data.source["test_images"] == [test.name] and data.source["sizes"]["train"] == 16
    # the same seed gives the same split; another seed another one
    again = load(_cfg(name="masks", root=str(tmp_path), tile_size=32))
    assert [t.name for t in again.test] == [test.name] and [t.name for t in again.search_valid] == [t.name for t in data.search_valid]
    others = {load(_cfg(name="masks", root=str(tmp_path), tile_size=32, split_seed=s)).test[0].name for s in range(1, 8)}
    assert others - {test.name}


def test_masks_class_count_ignore_palette_gray_and_scale(tmp_path: Path) -> None:
    _pair(tmp_path, "a", gray=True)
    _pair(tmp_path, "b", seed=1, gray=True, suffix=".tif")
    m = np.zeros((40, 48), np.uint8)
    m[:10, :10], m[30:, 30:] = 4, 255  # 255: unlabelled, not a class
    pal = Image.fromarray(m, mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0] + [0] * (3 * 251))
    pal.save(tmp_path / "masks" / "b.png")
    data = load(_cfg(name="masks", root=str(tmp_path), tile_size=16, test_fraction=0.5, scale=0.5))
    assert data.classes == [f"class_{k}" for k in range(5)] and data.in_chans == 1
    [test] = data.test
    assert test.image.shape == (20, 24, 1) and test.mask.shape == (20, 24)
    # a single training image: its left and right halves (12 columns each, padded to 16) give the two search sets
    assert len(data.search_train) == 2 and len(data.search_valid) == 2 and len(data.train) == 4
    assert all(_origin(t.name)[1] == 0 for t in data.search_train) and all(_origin(t.name)[1] == 12 for t in data.search_valid)
    assert all(t.image.shape == (16, 16, 1) for t in data.train)
    assert (data.search_train[0].mask[:, 12:] == 255).all() and (data.search_train[0].image[:, 12:] == 0).all()
    # the palette mask's raw indices, halved by nearest-neighbour resizing: 4 in the top-left 5x5, 255 from (15, 15) on
    b = test.mask if test.name == "b" else np.concatenate([data.search_train[0].mask[:, :12], data.search_valid[0].mask[:, :12]], axis=1)
    assert (b[:5, :5] == 4).all() and (b[15:16, 15:24] == 255).all() and set(np.unique(b).tolist()) == {0, 4, 255}


def test_tile_pads_small_images_and_snaps_the_last_window() -> None:
    item = SegImage("x", np.ones((10, 40, 1), np.float32), np.ones((10, 40), np.int64))
    tiles = tile(item, 16, 16, ignore_index=9)
    assert [t.name for t in tiles] == ["x_r0_c0", "x_r0_c16", "x_r0_c24"]
    assert (tiles[0].mask[10:] == 9).all() and (tiles[0].image[10:] == 0).all() and (tiles[0].mask[:10] == 1).all()


# ---------------------------------------------------------------- Pascal-VOC layout
def _palette_png(indices: np.ndarray, path: Path) -> None:
    """A mode-P PNG with a full 256-colour palette (as VOC's): without one, PIL renumbers the used indices on saving."""
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    im.putpalette(np.random.default_rng(0).integers(0, 256, 3 * 256).astype(np.uint8).tobytes())
    im.save(path)


def _voc(root: Path, train: list[str], val: list[str], top: int = 15) -> None:
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for k, i in enumerate(train + val):
        Image.fromarray(np.full((30, 50, 3), 40 * k, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        m = np.zeros((30, 50), np.uint8)
        m[5:20, 10:30] = top if k % 2 else 1
        m[4, 9:31] = 255  # VOC's object border: ignored
        _palette_png(m, root / "SegmentationClass" / f"{i}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")


def test_voc_seg_layout_loads(tmp_path: Path) -> None:
    _voc(tmp_path, ["2007_000001", "2007_000002", "2007_000003", "2007_000004"], ["2007_000005", "2007_000006"])
    data = load(_cfg(name="voc_seg", root=str(tmp_path), tile_size=32))
    assert data.classes == list(VOC_CLASSES) and len(data.classes) == 21 and data.in_chans == 3
    assert [t.name for t in data.test] == ["2007_000005", "2007_000006"] and data.test[0].image.shape == (30, 50, 3)
    assert set(np.unique(data.test[1].mask).tolist()) == {0, 15, 255}
    # 30x50 -> one window row (padded to 32), window columns 0 and 18; 4 images, 1 for search_valid
    assert len(data.train) == 8 and len(data.search_valid) == 2 and len(data.search_train) == 6
    assert all(t.mask.shape == (32, 32) and (t.mask[30:] == 255).all() for t in data.train)
    assert data.source["train_split"] == "train" and data.source["test_split"] == "val"


def test_voc_seg_names_beyond_voc_and_from_classes_txt(tmp_path: Path) -> None:
    _voc(tmp_path, ["a", "b"], ["c"], top=30)
    assert load(_cfg(name="voc_seg", root=str(tmp_path), tile_size=32)).classes == [f"class_{k}" for k in range(31)]
    (tmp_path / "classes.txt").write_text("\n".join(f"n{k}" for k in range(31)))
    assert load(_cfg(name="voc_seg", root=str(tmp_path), tile_size=32)).classes[30] == "n30"


# ---------------------------------------------------------------- broken input: one line naming the file
def _masks_root(tmp_path: Path, n: int = 3) -> Path:
    for k in range(n):
        _pair(tmp_path, f"im{k}", seed=k)
    return tmp_path


def _load_masks(root: Path, **kw) -> Callable[[], SegmentationData]:
    return lambda: load(_cfg(name="masks", root=str(root), tile_size=16, **kw))


def test_mask_size_differs_from_image(tmp_path: Path) -> None:
    root = _masks_root(tmp_path)
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(root / "masks" / "im1.png")
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(root / "images" / "im1.png")
    msg = _raises(_load_masks(root), root / "masks" / "im1.png", "mask is 30x40 but its image", "is 32x40")
    assert str(root / "images" / "im1.png") in msg


def test_class_index_beyond_classes_txt(tmp_path: Path) -> None:
    root = _masks_root(tmp_path)
    (root / "classes.txt").write_text("background\ncell\n")  # the masks hold index 2
    _raises(_load_masks(root), root / "masks" / "im0.png", "class index 2", "classes.txt")


def test_image_without_mask_and_mask_without_image(tmp_path: Path) -> None:
    root = _masks_root(tmp_path)
    (root / "masks" / "im2.png").rename(root / "masks" / "im2.tif")
    _raises(_load_masks(root), root / "images" / "im2.png", f"no mask with stem 'im2' in {root / 'masks'}", "masks must be PNG")
    (root / "masks" / "im2.tif").rename(root / "masks" / "im2.png")
    (root / "images" / "im2.png").unlink()
    _raises(_load_masks(root), root / "masks" / "im2.png", "no image with stem 'im2'")


def test_empty_or_missing_folders_and_root(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    _raises(_load_masks(tmp_path), f"{tmp_path / 'images'}: no images")
    _raises(_load_masks(tmp_path / "nowhere"), tmp_path / "nowhere", "not a directory")
    (tmp_path / "masks").rmdir()
    _raises(_load_masks(tmp_path), tmp_path / "masks", "not found")
    with pytest.raises(DataError, match=r"^data.root is not set; data=masks needs a directory with images/ and masks/$"):
        load(_cfg(name="masks"))
    with pytest.raises(DataError, match=r"^data.root is not set; data=voc_seg needs"):
        load(_cfg(name="voc_seg", root=None))
    with pytest.raises(DataError, match="allowed with task=segmentation: scenes, nuclei, masks, voc_seg"):
        load(_cfg(name="coco"))


def test_unreadable_image_mask_mode_and_channel_mismatch(tmp_path: Path) -> None:
    root = _masks_root(tmp_path)
    (root / "images" / "im1.png").write_bytes(b"not a picture")
    _raises(_load_masks(root), root / "images" / "im1.png", "cannot read image")
    _pair(root, "im1", seed=1, gray=True)  # RGB, gray, RGB
    _raises(_load_masks(root), root / "images" / "im1.png", "1 channel(s)", str(root / "images" / "im0.png"))
    _pair(root, "im1", seed=1)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(root / "masks" / "im2.png")
    _raises(_load_masks(root), root / "masks" / "im2.png", "mode RGB")


def test_single_image_and_bad_classes_txt(tmp_path: Path) -> None:
    root = tmp_path
    _pair(root, "only")
    _raises(_load_masks(root), root / "images", "at least 2")
    _pair(root, "second", seed=1)
    (root / "classes.txt").write_text("background\n\ncell\ndebris\n")
    _raises(_load_masks(root), root / "classes.txt", "line 2 is blank")
    (root / "classes.txt").write_text("background\ncell\ncell\n")
    _raises(_load_masks(root), root / "classes.txt", "repeats")


def test_voc_id_without_files_and_overlapping_lists(tmp_path: Path) -> None:
    _voc(tmp_path, ["a", "b"], ["c"])
    lists = tmp_path / "ImageSets" / "Segmentation"
    (tmp_path / "JPEGImages" / "b.jpg").unlink()
    _raises(
        lambda: load(_cfg(name="voc_seg", root=str(tmp_path))),
        lists / "train.txt",
        "id 'b' has no image",
        str(tmp_path / "JPEGImages" / "b.jpg"),
    )
    _voc(tmp_path, ["a", "b"], ["c"])
    (tmp_path / "SegmentationClass" / "c.png").unlink()
    _raises(lambda: load(_cfg(name="voc_seg", root=str(tmp_path))), lists / "val.txt", "id 'c' has no mask")
    _voc(tmp_path, ["a", "b"], ["b"])
    _raises(lambda: load(_cfg(name="voc_seg", root=str(tmp_path))), lists / "val.txt", "id 'b' is also in")
    (lists / "val.txt").unlink()
    _raises(lambda: load(_cfg(name="voc_seg", root=str(tmp_path))), lists / "val.txt", "not found")
    _voc(tmp_path, ["a", "b"], ["c"])
    _palette_png(np.zeros((29, 50), np.uint8), tmp_path / "SegmentationClass" / "b.png")
    msg = _raises(lambda: load(_cfg(name="voc_seg", root=str(tmp_path))), tmp_path / "SegmentationClass" / "b.png", "mask is 29x50")
    assert str(tmp_path / "JPEGImages" / "b.jpg") in msg and "is 30x50" in msg


def _binary_folder(root: Path, values: tuple[int, ...]) -> None:
    """Three 32x32 gray images whose masks hold a square of each of ``values`` (after a 0 background)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(3):
        mask = np.zeros((32, 32), np.uint8)
        for j, v in enumerate(values):
            mask[4 + 8 * j : 10 + 8 * j, 4 + 6 * k : 10 + 6 * k] = v
        Image.fromarray((mask > 0).astype(np.uint8) * 200).save(root / "images" / f"m{k}.png")
        Image.fromarray(mask).save(root / "masks" / f"m{k}.png")


def test_masks_saved_as_0_255_are_named_as_the_likely_mistake(tmp_path: Path) -> None:
    _binary_folder(tmp_path, (255,))
    msg = _raises(lambda: load(_cfg(name="masks", root=str(tmp_path), tile_size=16)), tmp_path / "masks", "only class 0 appears")
    assert "data.ignore_index" in msg and "0/255" in msg


def test_grey_level_masks_warn_once_and_load(tmp_path: Path) -> None:
    _binary_folder(tmp_path, (100, 200))
    with pytest.warns(UserWarning, match=r"mask values go up to 200 but only 3 of them appear \(0, 100, 200\)"):
        data = load(_cfg(name="masks", root=str(tmp_path), tile_size=16))
    assert len(data.classes) == 201
