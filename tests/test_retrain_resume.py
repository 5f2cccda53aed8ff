"""A run killed while it retrains the winner continues with resume=true and ends where an
uninterrupted run does: per-model epoch checkpoints (safetensors + JSON), removed once the
bundle is written."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import ZooCli
from helpers.resume import KilledAfter, RetrainKilled, same_weights
from helpers.tasks import digits_task

from zoo.runners.checkpoint import TrainingCheckpoints

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["task.model.init_channels=6", "task.model.layers=3", "trainer.epochs=3", "trainer.batch_size=64"]


def test_classification_retrain_resumes_to_the_uninterrupted_model(tmp_path: Path) -> None:
    task, space = digits_task(SMALL)
    genotype = space.sample(np.random.default_rng(3))
    whole, whole_metrics = task.retrain(genotype, TrainingCheckpoints(tmp_path / "whole", resume=False))

    with pytest.raises(RetrainKilled):
        digits_task(SMALL)[0].retrain(genotype, KilledAfter(tmp_path / "killed", "searched", epoch=0))
    saved = json.loads((tmp_path / "killed" / "retrain_searched.json").read_text())
    assert (saved["kind"], saved["meta"]["epoch"], saved["meta"]["epochs"]) == ("SGD training", 0, 3)

    fresh_task = digits_task(SMALL)[0]  # as a new process would: new task, data loaders, model
    resumed, resumed_metrics = fresh_task.retrain(genotype, TrainingCheckpoints(tmp_path / "killed", resume=True))
    assert same_weights(resumed, whole)
    assert resumed_metrics == whole_metrics
    assert whole_metrics["test_accuracy"] > 0.5  # it trained (chance 0.1)


def test_a_checkpoint_of_another_schedule_is_refused_in_one_line(tmp_path: Path) -> None:
    task, space = digits_task(SMALL)
    genotype = space.sample(np.random.default_rng(0))
    with pytest.raises(RetrainKilled):
        task.retrain(genotype, KilledAfter(tmp_path, "searched", epoch=0))
    longer = digits_task([*SMALL, "trainer.epochs=5"])[0]
    with pytest.raises(ValueError, match=r"retrain_searched.json was saved by a 3-epoch training, not 5; set the epochs back or delete it"):
        longer.retrain(genotype, TrainingCheckpoints(tmp_path, resume=True))


def test_cli_run_killed_during_retraining_resumes_to_the_same_bundle(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """The real CLI, killed with SIGKILL once retraining has saved an epoch, then resumed."""
    args = [
        "search=fixed",
        "search.arch=darts_v2",
        "trainer.epochs=6",
        "task.model.init_channels=8",
        "task.model.layers=4",
        "data.test_fraction=0.8",  # a fifth of digits to train on: 9 s a run instead of 17, test accuracy 0.83 (measured)
        "progress=false",
        "threads=1",
    ]
    whole = tmp_path / "whole"
    done = zoo_cli.run(*args, run_dir=whole)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(whole.glob("retrain_*")), "checkpoints are removed once the bundle is written"

    killed = tmp_path / "killed"
    proc = zoo_cli.start(*args, run_dir=killed)
    state = killed / "retrain_searched.json"
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-retraining"
    epoch = json.loads(state.read_text())["meta"]["epoch"]
    assert epoch < 5 and not (killed / "metrics.json").exists()

    again = zoo_cli.run(*args, "resume=true", run_dir=killed)
    assert again.returncode == 0, again.stderr[-2000:]
    from safetensors.torch import load_file

    w_whole, w_killed = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert w_whole.keys() == w_killed.keys() and all(torch.equal(w_whole[k], w_killed[k]) for k in w_whole)
    m_whole, m_killed = (json.loads((d / "metrics.json").read_text()) for d in (whole, killed))
    assert m_killed["test_accuracy"] == m_whole["test_accuracy"] > 0.5
    assert not list(killed.glob("retrain_*"))

    # resume=true on the finished run does nothing; another config in the same directory does not count as finished
    before = (killed / "metrics.json").stat().st_mtime_ns
    noop = zoo_cli.run(*args, "resume=true", "progress=true", run_dir=killed)
    assert noop.returncode == 0 and "already finished with this config; nothing to resume" in noop.stdout, noop.stderr[-2000:]
    assert "test_accuracy" in noop.stdout and (killed / "metrics.json").stat().st_mtime_ns == before
