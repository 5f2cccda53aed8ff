"""The zoo's own searched checkpoints: each loads by name and re-scores to the metrics its entry records."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tasks import build_task, private_cache  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

import zoo
from zoo.hub.registry import load_entries

ROOT = Path(__file__).resolve().parent.parent


def test_digits_entry_reproduces_its_accuracy() -> None:
    from tasks.classification.metrics import accuracy

    entry = load_entries()["digits-darts"]
    model = zoo.create_model("digits-darts", pretrained=True).eval()
    task = build_task([])
    acc = accuracy(model, task.loader("test", False))
    assert acc == pytest.approx(entry.metrics["test_accuracy"], abs=1e-6)
    assert acc > 0.95  # chance is 0.1: the release file holds a trained model, not just its own record
