"""Detection retraining and one-shot search resume bit-exactly: the tiles' flip-augmentation
generator travels with the checkpoints (the generic resume tests are tests/test_retrain_resume.py,
tests/test_oneshot_resume.py and the task contract suite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.data import make_rectangles
from helpers.resume import KilledAfter, RetrainKilled, SearchKilled, oneshot_search, same_weights
from helpers.tasks import detection_task

from zoo.runners.checkpoint import TrainingCheckpoints


def test_detection_retrain_and_baseline_resume_bit_exactly(tmp_path: Path) -> None:
    """Both models of a detection run (the winner, then the baseline) resume; the tiles'
    flip-augmentation generator is part of the checkpoint, so the result is bit-exact."""
    root = make_rectangles(tmp_path / "data", n=12)
    args = [
        "trainer.epochs=3",
        "trainer.batch_size=8",
        "task.model.init_channels=6",
        "task.model.neck_channels=8",
        "task.baseline.backbone=resnet18",
    ]
    from tasks.detection.space import DetectionGenotype

    task, space = detection_task(root, args)
    genotype = DetectionGenotype(space.fixed_backbone, space.fixed_neck)
    whole, whole_metrics = task.retrain(genotype, TrainingCheckpoints(tmp_path / "whole", resume=False))
    with pytest.raises(RetrainKilled):
        detection_task(root, args)[0].retrain(genotype, KilledAfter(tmp_path / "killed", "baseline", epoch=1))
    assert json.loads((tmp_path / "killed" / "retrain_searched.json").read_text())["meta"]["epoch"] == 2  # finished
    assert json.loads((tmp_path / "killed" / "retrain_baseline.json").read_text())["meta"]["epoch"] == 1
    resumed, resumed_metrics = detection_task(root, args)[0].retrain(genotype, TrainingCheckpoints(tmp_path / "killed", resume=True))
    assert same_weights(resumed, whole)
    drop = ("train_seconds",)
    clean = lambda m: {
        k: ({kk: vv for kk, vv in v.items() if kk not in drop} if isinstance(v, dict) else v) for k, v in m.items() if k not in drop
    }  # noqa: E731
    assert clean(resumed_metrics) == clean(whole_metrics)


def test_killed_detection_search_resumes_bit_exactly(tmp_path: Path) -> None:
    """Detection tiles are flipped at random by their dataset's own generator; the checkpoint
    carries it, so the resumed search logs exactly what the uninterrupted one does."""
    root = make_rectangles(tmp_path / "data", n=10, size=48)
    make = lambda: detection_task(root, ["data.tile_size=48", "trainer.batch_size=4"])[0]  # noqa: E731
    whole, whole_log, _ = oneshot_search("darts", tmp_path / "whole", resume=False, make_task=make)
    with pytest.raises(SearchKilled):
        oneshot_search("darts", tmp_path / "killed", resume=False, kill_after=2, make_task=make)
    resumed, resumed_log, _ = oneshot_search("darts", tmp_path / "killed", resume=True, make_task=make)
    assert resumed == whole and resumed_log == whole_log
