"""search=darts on task=rl killed after an epoch and resumed ends exactly where the uninterrupted
search does: the rollout loaders' seeds are saved with the epoch checkpoint, so the resumed run
collects the same episodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from zoo.__main__ import compose_config
from zoo.build import make_task
from zoo.runners.checkpoint import EpochCheckpoint
from zoo.runners.local import JsonlLog
from zoo.search.base import STRATEGIES

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=rl",
    "search=darts",
    "task.supernet.width=8",
    "task.supernet.rollouts=2",
    "trainer.n_epochs=2",
    "trainer.curve_episodes=2",
]


class Killed(Exception):
    pass


def _search(run: Path, resume: bool, kill_after: int | None = None) -> tuple[Any, list[dict[str, Any]], dict[str, torch.Tensor]]:
    """One search as a fresh process runs it: new task, supernet policy, rollout loaders and strategy."""
    task = make_task(compose_config(TINY))
    task.setup()
    problem = task.one_shot_problem()
    log = JsonlLog(run / "search_log.jsonl")
    problem.checkpoint = EpochCheckpoint(run, resume=resume, log_path=log.path).track(problem.train_loader, problem.valid_loader)
    epochs = 0

    def append(record: dict[str, Any]) -> None:
        nonlocal epochs
        log.append(record)
        epochs += 1
        if kill_after is not None and epochs == kill_after:
            raise Killed  # after the epoch's log line, before its checkpoint

    genotype = STRATEGIES.get("darts")(progress=False, epochs=3, warmup_epochs=0, arch_lr=0.01).search(problem, log=append)
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    return genotype, lines, {k: v.clone() for k, v in problem.supernet.state_dict().items()}


def test_killed_rl_darts_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    whole, whole_log, whole_state = _search(tmp_path / "whole", resume=False)
    with pytest.raises(Killed):
        _search(tmp_path / "killed", resume=False, kill_after=2)
    resumed, resumed_log, resumed_state = _search(tmp_path / "killed", resume=True)
    assert [r["epoch"] for r in resumed_log] == [1, 2, 3]
    assert resumed_log == whole_log  # rewards (episode returns), losses and architecture weights of every epoch
    assert resumed == whole
    differ = [k for k in whole_state if not torch.equal(whole_state[k], resumed_state[k])]
    assert not differ, f"{len(differ)} supernet tensors differ, the first {differ[0]!r}"
