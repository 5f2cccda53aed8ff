"""search=darts on task=rl killed after an epoch and resumed ends exactly where the uninterrupted
search does: the rollout loaders' seeds are saved with the epoch checkpoint, so the resumed run
collects the same episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.resume import SearchKilled, SearchRun, oneshot_search

from zoo.__main__ import compose_config
from zoo.build import make_task

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=rl",
    "search=darts",
    "task.supernet.width=8",
    "task.supernet.rollouts=2",
    "trainer.n_epochs=2",
    "trainer.curve_episodes=2",
]


def _task() -> Any:
    task = make_task(compose_config(TINY))
    task.setup()
    return task


def _search(run: Path, resume: bool, kill_after: int | None = None) -> SearchRun:
    """One search as a fresh process runs it: new task, supernet policy, rollout loaders and strategy."""
    return oneshot_search("darts", run, resume, kill_after, make_task=_task, hparams={"epochs": 3, "warmup_epochs": 0, "arch_lr": 0.01})


def test_killed_rl_darts_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    whole, whole_log, whole_state = _search(tmp_path / "whole", resume=False)
    with pytest.raises(SearchKilled):
        _search(tmp_path / "killed", resume=False, kill_after=2)
    resumed, resumed_log, resumed_state = _search(tmp_path / "killed", resume=True)
    assert [r["epoch"] for r in resumed_log] == [1, 2, 3]
    assert resumed_log == whole_log  # rewards (episode returns), losses and architecture weights of every epoch
    assert resumed == whole
    differ = [k for k in whole_state if not torch.equal(whole_state[k], resumed_state[k])]
    assert not differ, f"{len(differ)} supernet tensors differ, the first {differ[0]!r}"
