"""The zoo's own searched checkpoints: each loads by name and re-scores to the metrics its entry records."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import zoo
from zoo.hub.registry import load_entries
from zoo.space.base import SPACES
from zoo.task import TASKS

ROOT = Path(__file__).resolve().parent.parent


def _task(overrides: list[str]):
    from zoo.__main__ import compose_config

    cfg = compose_config(overrides)
    space_cfg = OmegaConf.to_container(cfg.space, resolve=True)
    space = SPACES.get(space_cfg.pop("name"))(**space_cfg)
    task = TASKS.get(cfg.task.name)(cfg.task, cfg.data, cfg.trainer, space, seed=0, progress=False)
    task.setup()
    return task


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    torch.set_num_threads(1)


def test_digits_entry_reproduces_its_accuracy() -> None:
    from tasks.classification.metrics import accuracy

    entry = load_entries()["digits-darts"]
    model = zoo.create_model("digits-darts", pretrained=True).eval()
    task = _task([])
    acc = accuracy(model, task.loader("test", False))
    assert acc == pytest.approx(entry.metrics["test_accuracy"], abs=1e-6)
    assert acc > 0.95  # chance is 0.1: the release file holds a trained model, not just its own record
