"""``data=masks`` whose masks are grey photos (a new user's likely mistake: the photo saved again as
its own mask) is refused in one line before any training, instead of searching a 250-class model
(issue 20 item 7). Real photos: crops of scikit-learn's sample image ``china.jpg``. A data set
that really has that many classes loads once ``classes.txt`` names them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.cli import ZooCli, one_error_line
from omegaconf import OmegaConf
from PIL import Image

from tasks.segmentation.data import MAX_UNNAMED_CLASSES, load, read_mask
from zoo.task import DataError

CROPS = [(100, 150), (200, 300), (250, 450)]  # top-left corners of 96x96 crops with many grey levels


def photo_folder(root: Path) -> int:
    """images/ holds RGB crops of a photo, masks/ the same crops in grey (mode L); returns the distinct grey values."""
    from sklearn.datasets import load_sample_image

    photo = load_sample_image("china.jpg")
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    seen: set[int] = set()
    for k, (y, x) in enumerate(CROPS):
        crop = Image.fromarray(photo[y : y + 96, x : x + 96])
        crop.save(root / "images" / f"p{k}.jpg")
        grey = crop.convert("L")
        grey.save(root / "masks" / f"p{k}.png")
        seen.update(int(v) for v in np.unique(np.asarray(grey)))
    return len(seen - {255})


def cfg(root: Path) -> object:
    return OmegaConf.create({"name": "masks", "root": str(root), "tile_size": 32})


def test_grey_photo_masks_are_refused_in_one_line(tmp_path: Path) -> None:
    distinct = photo_folder(tmp_path)
    assert distinct > MAX_UNNAMED_CLASSES
    with pytest.raises(DataError) as e:
        load(cfg(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'masks'}: the masks hold {distinct} distinct values") and "grey levels" in msg
    assert str(tmp_path / "classes.txt") in msg


def test_many_classes_load_when_classes_txt_names_them(tmp_path: Path) -> None:
    """Label masks of 70 classes (piecewise constant): refused unnamed, loaded with their names."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    n = MAX_UNNAMED_CLASSES + 6
    for k in range(2):
        mask = np.repeat(np.repeat(np.arange(n, dtype=np.uint8).reshape(7, 10), 8, axis=0), 8, axis=1)  # 56x80 of 8x8 blocks
        Image.fromarray(np.roll(mask, k, axis=1)).save(tmp_path / "masks" / f"m{k}.png")
        Image.fromarray((mask * 3).astype(np.uint8)).save(tmp_path / "images" / f"m{k}.png")
    with pytest.raises(DataError, match=f"the masks hold {n} distinct values"):
        load(cfg(tmp_path))
    (tmp_path / "classes.txt").write_text("".join(f"thing{k}\n" for k in range(n)))
    assert len(load(cfg(tmp_path)).classes) == n


def test_the_mask_mode_error_names_every_accepted_mode(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError) as e:
        read_mask(tmp_path / "rgb.png")
    assert "mode L or P" in str(e.value) and "mode 1 (0/1)" in str(e.value)


def test_the_cli_refuses_grey_photo_masks_before_training(zoo_cli: ZooCli, tmp_path: Path) -> None:
    photo_folder(tmp_path / "data")
    run = tmp_path / "run"
    proc = zoo_cli.run("task=segmentation", "data=masks", f"data.root={tmp_path / 'data'}", run_dir=run, timeout=300)
    line = one_error_line(proc)
    assert "distinct values" in line and "grey levels" in line, line
    # refused while the task sets up, after Hydra recorded its config: no search, no model, no log
    assert {p.name for p in run.iterdir()} <= {".hydra"} if run.exists() else True
