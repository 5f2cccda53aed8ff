"""Detection on data=scenes (the default): generated scenes from Fashion-MNIST objects, tiny counts, trained briefly."""

from __future__ import annotations

import numpy as np
from helpers.tasks import build_task, loss_before_and_after, private_cache  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

from zoo.scenes import FASHION_MNIST_CLASSES

SMALL = [
    "task=detection",
    "data.train_scenes=24",
    "data.test_scenes=6",
    "task.estimate_model.init_channels=4",
    "task.estimate_model.neck_channels=8",
    "trainer.batch_size=8",
    "trainer.lr=0.01",
]


def test_scenes_are_the_default_and_give_boxes_of_the_ten_classes() -> None:
    task = build_task(SMALL)
    assert task.data_cfg.name == "scenes" and task.classes == list(FASHION_MNIST_CLASSES)
    train, test = task.splits["train"], task.splits["test"]
    assert len(train) == 24 and len(test) == 6
    assert all(t.image.shape == (128, 128, 3) for t in train)  # one tile per scene, smaller canvases padded
    assert {t.image.shape[0] for t in test} <= {96, 112, 128}  # test scenes whole, at their own size
    for t in train + test:
        h, w = t.image.shape[:2]
        assert 2 <= len(t.boxes) <= 6 and np.all(t.boxes[:, 2:] <= [w, h]) and np.all(t.boxes[:, :2] >= 0)
        assert t.labels.min() >= 0 and t.labels.max() < 10
    d = task.describe_data()
    assert (d["name"], d["train_scenes"], d["test_scenes"]) == ("scenes", 24, 6) and d["n_test_boxes"] == d["test_objects"]


def test_a_detector_learns_on_scenes() -> None:
    """Three short epochs bring the loss of a random architecture's estimation network well below its value at initialisation."""
    before, after = loss_before_and_after(build_task(SMALL), 3)
    assert after < 0.8 * before, (before, after)
