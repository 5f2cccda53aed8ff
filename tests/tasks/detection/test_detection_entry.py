"""The zoo's detection entry re-scores to its recorded mAP from the shipped weights."""

from __future__ import annotations

import pytest
from helpers.tasks import build_task, private_cache  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

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
