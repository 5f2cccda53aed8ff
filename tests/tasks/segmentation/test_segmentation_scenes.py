"""Segmentation on data=scenes (the default): class masks of generated scenes, tiny counts, trained briefly."""

from __future__ import annotations

import numpy as np
from helpers.tasks import build_task, loss_before_and_after, private_cache  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

from zoo.scenes import FASHION_MNIST_CLASSES

SMALL = [
    "task=segmentation",
    "data.train_scenes=16",
    "data.test_scenes=4",
    "trainer.batch_size=8",
    "trainer.lr=0.01",
    "trainer.search_items=null",
]


def test_scenes_are_the_default_and_give_class_masks() -> None:
    task = build_task(SMALL)
    data = task.data
    assert task.data_cfg.name == "scenes" and data.classes == ["background", *FASHION_MNIST_CLASSES] and data.in_chans == 3
    assert len(data.train) == 16 and len(data.test) == 4
    assert len(data.search_valid) == 4 and len(data.search_train) == 12  # a quarter of the scenes scores architectures
    for t in data.train:
        assert t.image.shape == (128, 128, 3) and t.mask.shape == (128, 128)
        h = int((t.mask != 255).any(1).sum())  # padding outside the scene is unlabelled
        assert h in (96, 112, 128) and set(np.unique(t.mask)) - {255} <= set(range(11))
        assert len(set(np.unique(t.mask)) - {0, 255}) >= 1
    assert all(t.image.shape[0] in (96, 112, 128) and (t.mask != 255).all() for t in data.test)


def test_a_segmenter_learns_on_scenes() -> None:
    """Three short epochs bring the loss of a random architecture's estimation network well below its value at initialisation."""
    before, after = loss_before_and_after(build_task(SMALL), 3)
    assert after < 0.8 * before, (before, after)


def test_search_items_cap_the_search_splits_only() -> None:
    """trainer.search_items=8: candidates and the supernet see a seeded 8 items of each search split, the same ones
    every time; retraining (the train split) keeps every scene; a cap above a split's size keeps it whole."""
    task = build_task([*SMALL, "data.train_scenes=40", "trainer.search_items=8"])
    assert len(task.data.search_train) == 30 and len(task.data.search_valid) == 10
    part = task.search_loader("search_train", True)
    assert len(part.dataset) == 8 and part.dataset.indices == task.search_loader("search_train", False).dataset.indices
    problem = task.one_shot_problem()
    assert len(problem.train_loader.dataset) == 8 and len(problem.valid_loader.dataset) == 8
    assert len(task.loader("train", True).dataset) == 40
    wide = build_task([*SMALL, "data.train_scenes=40", "trainer.search_items=31"])
    assert len(wide.search_loader("search_train", True).dataset) == 30
