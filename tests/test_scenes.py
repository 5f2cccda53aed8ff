"""zoo.scenes: multi-object scenes from Fashion-MNIST (the Debian package) and from a user's object crops.

Checked on the real objects: scenes are a function of (objects, seed, settings) and asking for more keeps the
first ones; test scenes use only the test split's objects; boxes, instance ids and class masks agree; no object
is occluded past the bound; the clutter defeats an intensity threshold; the cache returns the same arrays; crops
get their mask from alpha or from their border colour; bad settings fail in one line naming the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from zoo.scenes import (
    SceneError,
    SceneSettings,
    draw_scene,
    draw_scenes,
    fashion_mnist_objects,
    folder_objects,
    load_split,
    scene_set,
    settings_from,
)

SETTINGS = SceneSettings()


@pytest.fixture(scope="module")
def train_objects():
    return fashion_mnist_objects("train")


@pytest.fixture(scope="module")
def scenes(train_objects):
    return list(draw_scenes(train_objects, "train", 40, SETTINGS))


@pytest.fixture
def zoo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_scenes_are_seeded_and_more_scenes_keep_the_first(train_objects, scenes) -> None:
    again = list(draw_scenes(train_objects, "train", 50, SETTINGS))[:40]
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes) for a, b in zip(scenes, again))
    other = list(draw_scenes(train_objects, "train", 5, SceneSettings(seed=1)))
    assert not any(np.array_equal(a.image, b.image) for a, b in zip(scenes, other) if a.image.shape == b.image.shape)


def test_boxes_instances_and_class_masks_agree(scenes) -> None:
    sizes, counts = set(), []
    for s in scenes:
        H, W = s.instances.shape
        sizes.add(H)
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8 and H == W
        n = len(s.labels)
        counts.append(n)
        assert set(np.unique(s.instances)) == set(range(n + 1))  # every placed object is visible
        for k, (x1, y1, x2, y2) in enumerate(s.boxes.astype(int)):
            ys, xs = np.nonzero(s.instances == k + 1)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        mask = s.class_mask
        assert np.array_equal(mask > 0, s.instances > 0)
        for k, label in enumerate(s.labels):
            assert np.all(mask[s.instances == k + 1] == label + 1)
    assert sizes <= set(SETTINGS.canvas) and len(sizes) > 1
    assert min(counts) >= SETTINGS.min_objects and max(counts) <= SETTINGS.max_objects
    assert np.mean(counts) > 3.0, counts  # 2-6 objects, nearly all placed


def test_no_object_is_occluded_past_the_bound(train_objects) -> None:
    for bound in (0.0, 0.2, SETTINGS.max_occlusion):
        crowded = SceneSettings(max_occlusion=bound, min_objects=6, max_objects=6)
        for i in range(8):
            s = draw_scene(train_objects, np.random.default_rng([0, 0, i]), crowded)
            visible = np.bincount(s.instances.ravel(), minlength=len(s.labels) + 1)[1:]
            assert np.all(visible >= (1.0 - bound) * s.areas), (bound, visible, s.areas)
            if bound == 0.0:
                assert np.array_equal(visible, s.areas)


def test_a_threshold_does_not_separate_objects_from_the_clutter(scenes) -> None:
    """The best single grey-level threshold (either direction) labels objects vs background with IoU well below 0.5."""
    grey = np.concatenate([s.image.mean(-1).ravel() for s in scenes])
    fg = np.concatenate([(s.instances > 0).ravel() for s in scenes])
    best = 0.0
    for t in np.linspace(0, 255, 52):
        for pred in (grey > t, grey < t):
            best = max(best, float((pred & fg).sum() / (pred | fg).sum()))
    assert 0.0 < best < 0.4, best


def test_test_scenes_hold_only_test_split_objects(zoo_home: Path) -> None:
    cfg = OmegaConf.create({"train_scenes": 3, "test_scenes": 3})
    test_scenes, classes = load_split(cfg, "test")
    train_scenes, _ = load_split(cfg, "train")
    assert classes[0] == "t-shirt/top" and len(classes) == 10
    test_objects = fashion_mnist_objects("test")
    # scene i of the test split is drawn from the test pool with generator [seed, 1, i]
    redrawn = draw_scene(test_objects, np.random.default_rng([0, 1, 0]), SETTINGS)
    assert np.array_equal(redrawn.image, test_scenes[0].image)
    assert not np.array_equal(train_scenes[0].image[:96, :96], test_scenes[0].image[:96, :96])


def test_the_cache_returns_the_same_scenes_and_survives_a_torn_file(zoo_home: Path, train_objects) -> None:
    first = scene_set(train_objects, "train", 6, SETTINGS)
    files = list((zoo_home / "scenes").glob("*.npz"))
    assert len(files) == 1
    again = scene_set(train_objects, "train", 6, SETTINGS)
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.instances, b.instances)
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
    files[0].write_bytes(b"torn")
    third = scene_set(train_objects, "train", 6, SETTINGS)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, third))
    assert len(list((zoo_home / "scenes").glob("*"))) == 1  # replaced in place, no temporary file left


def _crop_folder(root: Path) -> Path:
    """Two classes of 12 crops each: RGBA discs (mask from alpha) and grey squares on white (mask from the border colour)."""
    from PIL import Image

    yy, xx = np.mgrid[0:24, 0:24]
    disc = (yy - 12) ** 2 + (xx - 12) ** 2 < 81
    for k in range(12):
        (root / "disc").mkdir(parents=True, exist_ok=True)
        (root / "square").mkdir(parents=True, exist_ok=True)
        rgba = np.zeros((24, 24, 4), np.uint8)
        rgba[disc] = (200, 40 + k * 10, 30, 255)
        Image.fromarray(rgba, "RGBA").save(root / "disc" / f"d{k}.png")
        grey = np.full((20, 20), 255, np.uint8)
        grey[4:16, 4:16] = 60 + k
        Image.fromarray(grey, "L").save(root / "square" / f"s{k}.png")
    return root


def test_folder_crops_take_their_masks_from_alpha_or_the_border_colour(tmp_path: Path, zoo_home: Path) -> None:
    root = _crop_folder(tmp_path / "crops")
    train, test = folder_objects(root, "train"), folder_objects(root, "test")
    assert train.classes == ["disc", "square"] and len(train) + len(test) == 24 and len(test) > 0
    for k in range(len(train)):
        m = train.mask(k)
        if train.labels[k] == 0:
            assert m.shape == (24, 24) and 230 < m.sum() < 270  # the disc of radius 9 (254 pixels)
            assert train.images[k].ndim == 3
        else:
            assert m.sum() == 144 and m[4:16, 4:16].all()  # the 12x12 square, not its white surround
            assert train.images[k].ndim == 2
    cfg = OmegaConf.create({"objects": str(root), "train_scenes": 4, "test_scenes": 2})
    scenes, classes = load_split(cfg, "train")
    assert classes == ["disc", "square"] and all(set(s.labels.tolist()) <= {0, 1} for s in scenes)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"min_objects": 5, "max_objects": 2}, "data.min_objects=5, data.max_objects=2"),
        ({"canvas": [16]}, "data.canvas=[16]"),
        ({"object_size": [24]}, "data.object_size=[24]"),
        ({"object_size": [24, 200]}, "data.object_size=[24, 200]"),
        ({"max_occlusion": 1.0}, "data.max_occlusion=1.0"),
        ({"seed": -1}, "data.seed=-1"),
        ({"distractors": [3, 1]}, "data.distractors=[3, 1]"),
    ],
)
def test_bad_settings_fail_in_one_line_naming_the_field(values: dict, field: str) -> None:
    with pytest.raises(SceneError) as e:
        settings_from(OmegaConf.create(values))
    assert str(e.value).startswith(field) and "\n" not in str(e.value)


def test_missing_objects_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="has no Fashion-MNIST IDX files"):
        fashion_mnist_objects("train", tmp_path)
    with pytest.raises(SceneError, match="is not a directory"):
        folder_objects(tmp_path / "nothing", "train")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(SceneError, match="has no images"):
        folder_objects(tmp_path / "empty", "train")
