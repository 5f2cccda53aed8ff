"""A one-shot search killed mid-way and restarted with resume=true ends exactly where an
uninterrupted one does: epoch checkpoints (safetensors + JSON), log lines of redone epochs dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import one_error_line, zoo
from test_oneshot_strategies import TINY, digits_task

from zoo.runners.checkpoint import STATE, TENSORS, EpochCheckpoint
from zoo.runners.local import JsonlLog
from zoo.search.base import STRATEGIES

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = {
    "darts": {"epochs": 3, "warmup_epochs": 0, "arch_lr": 0.003},
    "pc_darts": {"epochs": 3, "partial_channels": 2, "warmup_epochs": 0, "arch_lr": 0.003},
    "spos": {"epochs": 3, "population_size": 4, "generations": 2, "parents": 2},
}


class Killed(Exception):
    pass


def _search(name: str, run: Path, resume: bool, kill_after: int | None = None, make_task: Any = None) -> tuple[Any, list[dict[str, Any]]]:
    """One search as a fresh process would run it: new task, supernet, loaders and strategy."""
    task = make_task() if make_task is not None else digits_task(TINY)[0]
    problem = task.one_shot_problem()
    log = JsonlLog(run / "search_log.jsonl")
    problem.checkpoint = EpochCheckpoint(run, resume=resume, log_path=log.path).track(problem.train_loader, problem.valid_loader)
    epochs_logged = 0

    def append(record: dict[str, Any]) -> None:
        nonlocal epochs_logged
        log.append(record)
        epochs_logged += "epoch" in record
        if kill_after is not None and epochs_logged == kill_after:
            raise Killed  # after the log line of this epoch, before its checkpoint: the worst moment

    strategy = STRATEGIES.get(name)(progress=False, **CONFIGS[name])
    genotype = strategy.search(problem, log=append)
    return genotype, [json.loads(l) for l in log.path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_killed_search_resumes_to_the_uninterrupted_result(tmp_path: Path, name: str) -> None:
    whole, whole_log = _search(name, tmp_path / "whole", resume=False)
    with pytest.raises(Killed):
        _search(name, tmp_path / "killed", resume=False, kill_after=2)
    saved = json.loads((tmp_path / "killed" / STATE).read_text())
    assert saved["meta"]["epoch"] == 1 and (tmp_path / "killed" / TENSORS).is_file()
    resumed, resumed_log = _search(name, tmp_path / "killed", resume=True)
    assert resumed == whole
    assert resumed_log == whole_log  # the line of the killed epoch was dropped and written again, identically
    assert [r["epoch"] for r in resumed_log if "epoch" in r] == [1, 2, 3]


def test_checkpoint_of_another_strategy_or_torn_pair_is_refused(tmp_path: Path) -> None:
    task, _ = digits_task(TINY)
    problem = task.one_shot_problem()
    ckpt = EpochCheckpoint(tmp_path, resume=True)
    ckpt.save("DARTS", {"supernet": problem.supernet}, {"epoch": 1})
    with pytest.raises(ValueError, match="is a checkpoint of DARTS, not of SPOS"):
        ckpt.restore("SPOS", {"supernet": problem.supernet})
    (tmp_path / TENSORS).write_bytes((tmp_path / TENSORS).read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"does not match .* \(a save was interrupted\)"):
        ckpt.restore("DARTS", {"supernet": problem.supernet})
    assert EpochCheckpoint(tmp_path, resume=False).restore("DARTS", {"supernet": problem.supernet}) is None  # fresh start


@pytest.mark.slow
def test_cli_one_shot_run_refuses_to_overwrite_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["search=darts", "search.epochs=2", "search.warmup_epochs=0", *TINY, "trainer.epochs=1", "task.model.layers=2", "threads=1"]
    first = zoo(*args, run_dir=run)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = (run / "search_log.jsonl").read_text().splitlines()
    assert "resume=true" in one_error_line(zoo(*args, run_dir=run))
    again = zoo(*args, "resume=true", run_dir=run)  # the run is complete: nothing runs again
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "search_log.jsonl").read_text().splitlines() == lines
    assert json.loads((run / "genotype.json").read_text()) == json.loads((run / "metrics.json").read_text())["genotype"]
