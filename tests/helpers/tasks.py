"""Tasks built as the pipeline builds them, for tests that train in-process; the small configs they share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

# a small DARTS supernet on digits; the found genotype is then trained from scratch for 6 short epochs (task.estimate)
TINY = ["task.supernet.init_channels=4", "task.supernet.layers=3", "trainer.batch_size=32", "trainer.estimate_epochs=6"]


def build_task(overrides: list[str]) -> Any:
    """The task (set up: data read and split) of the config ``overrides`` compose to, seed 0, no progress bars."""
    from zoo.__main__ import compose_config
    from zoo.space.base import SPACES
    from zoo.task import TASKS

    cfg = compose_config(overrides)
    space_cfg = OmegaConf.to_container(cfg.space, resolve=True)
    space = SPACES.get(space_cfg.pop("name"))(**space_cfg)  # type: ignore[union-attr]
    task = TASKS.get(cfg.task.name)(cfg.task, cfg.data, cfg.trainer, space, seed=0, progress=False)
    task.setup()
    return task


def digits_task(overrides: list[str]) -> tuple[Any, Any]:
    """Classification on scikit-learn's digits: (task, space); without the baseline unless ``overrides`` turn it on
    (retraining it is checked in tests/tasks/classification)."""
    task = build_task(["task=classification", "data=digits", "task.baseline.enabled=false", *overrides])
    return task, task.space


def detection_task(root: Path, overrides: list[str]) -> tuple[Any, Any]:
    """Detection on the COCO data set at ``root`` in 64-px tiles: (task, space)."""
    task = build_task(["task=detection", "data=coco", f"data.root={root}", "data.tile_size=64", *overrides])
    return task, task.space


def loss_before_and_after(task: Any, epochs: int) -> tuple[float, float]:
    """The mean loss of a random architecture's estimation network on the search-training batches, before and after
    ``task.fit`` trains it there for ``epochs``."""
    import numpy as np

    model = task.build_model(task.space.sample(np.random.default_rng(0)), final=False)
    batches = list(task.loader("search_train", False))

    def mean_loss() -> float:
        with torch.no_grad():
            return float(np.mean([task.loss(model, b).item() for b in batches]))

    before = mean_loss()
    task.fit(model, "search_train", epochs, "estimate")
    return before, mean_loss()


def max_off_uniform(rows: list) -> float:
    """The largest distance of any logged softmax weight from the uniform 1/len(row) (nested lists of rows)."""
    if rows and isinstance(rows[0], (int, float)):
        return max(abs(w - 1.0 / len(rows)) for w in rows)
    return max(max_off_uniform(r) for r in rows)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse where a module imports it: a private, empty ``ZOO_HOME`` and one torch thread."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    torch.set_num_threads(1)


def rescore_scenes_entry(name: str, task_name: str) -> tuple[Any, dict[str, Any]]:
    """A zoo entry trained on the default scenes, and its metrics on all 1,000 test scenes drawn again (a scene depends
    only on its index, so 8 training scenes suffice): the entry's weights, fetched and loaded as a user's would be."""
    import zoo
    from zoo.hub.registry import load_entries

    entry = load_entries()[name]
    assert entry.data["reproduce"] == f"python -m zoo task={task_name} seed=1 resume=false"
    model = zoo.create_model(name, pretrained=True).eval()
    task = build_task([f"task={task_name}", "data.train_scenes=8", "task.baseline.enabled=false"])
    assert len(task.splits["test"]) == 1000
    return entry, task.test(model, "zoo")
