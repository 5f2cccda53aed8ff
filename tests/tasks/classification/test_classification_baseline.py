"""The hand-made baseline beside the searched network: timm's ResNet-18 with its widths scaled to the searched
network's parameter count (within 10%), trained with the same data, epochs and recipe; other sizes and named
timm models on request."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tasks import digits_task

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_same_size_resnet_trains_beside_the_searched_network() -> None:
    overrides = ["task.baseline.enabled=true", "task.model.init_channels=8", "task.model.layers=3", "trainer.epochs=3"]
    task, space = digits_task([*overrides, "data.test_fraction=0.5"])
    _, m = task.retrain(space.sample(np.random.default_rng(0)))
    base = m["baseline"]
    assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"] and base["params_within_tolerance"]
    assert base["params_ratio"] == round(m["params_baseline"] / m["params"], 4) and base["params_target"] == m["params"]
    assert m["searched_minus_baseline"] == {"accuracy": m["test_accuracy"] - m["test_accuracy_baseline"]}
    assert m["test_accuracy_baseline"] > 0.5, m  # it learns the digits (chance is 0.1); measured 0.87
    assert base["model"].startswith("timm ResNet-18 (random init, stride-1 stem, no max-pool)")


@pytest.mark.parametrize("target", [20_000, 200_000, 2_000_000])
def test_the_resnet_family_reaches_each_size_within_ten_percent(target: int) -> None:
    task, _ = digits_task([f"task.baseline.params={target}"])
    model, about = task.create_baseline(searched_params=123)
    assert abs(task.count_parameters(model) - target) <= 0.1 * target and about["params_within_tolerance"]
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_a_named_timm_model_keeps_its_own_size() -> None:
    task, _ = digits_task(["task.baseline.model=resnet18", "task.stem=imagenet"])
    model, about = task.create_baseline(searched_params=123)
    assert 11_000_000 < task.count_parameters(model) < 11_300_000 and about == {"model": "timm resnet18 (random init, ImageNet stem)"}
