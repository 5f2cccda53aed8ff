"""The zoo's detection entries re-score to their recorded mAP from the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import ZooCli
from helpers.data import make_colours
from helpers.tasks import build_task, private_cache, rescore_scenes_entry  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

import zoo
from zoo.hub.registry import load_entries


def test_trees_detection_entry_reproduces_its_map() -> None:
    entry = load_entries()["trees-fpn-darts"]
    assert entry.task == "detection" and entry.data["reproduce"] == (
        "python -m zoo task=detection search=darts data=trees trainer.epochs=80 trainer.estimate_epochs=4"
    )
    model = zoo.create_model("trees-fpn-darts", pretrained=True).eval()
    task = build_task(["task=detection", "data=trees"])
    m = task.test(model, "zoo")
    assert m["mAP50"] == pytest.approx(entry.metrics["test_mAP50"], abs=1e-3)
    assert m["mAP"] == pytest.approx(entry.metrics["test_mAP"], abs=1e-3)
    assert m["mAP50"] > 0.05  # an untrained detector scores ~0 on the held-out image


@pytest.mark.slow
def test_scenes_detection_entry_reproduces_its_map_and_beats_its_same_size_baseline() -> None:
    entry, m = rescore_scenes_entry("scenes-det-darts", "detection")
    assert m["mAP50"] == pytest.approx(entry.metrics["test_mAP50"], abs=1e-3)
    assert m["mAP"] == pytest.approx(entry.metrics["test_mAP"], abs=1e-3)
    assert m["mAP50"] > entry.metrics["test_mAP50_baseline"]  # the same-size ResNet + FPN of its run


def test_scenes_detection_entry_fine_tunes_on_a_coco_folder(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """The entry's ten-class head is replaced by a two-class one (red and blue rectangles, COCO json) and trained."""
    run = tmp_path / "ft"
    out = zoo_cli.run(
        "task=detection",
        "mode=finetune",
        "checkpoint=scenes-det-darts",
        "data=coco",
        f"data.root={make_colours(tmp_path / 'colours')}",
        "data.tile_size=64",
        "trainer.batch_size=8",
        "finetune.epochs=20",
        "finetune.freeze_epochs=3",
        "finetune.min_steps=0",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={run}",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert m["head_replaced"] is True and cfg["labels"] == ["red", "blue"] and cfg["finetuned_from"]["checkpoint"] == "scenes-det-darts"
    assert m["test_mAP50"] > 0.5, m  # measured 0.77
