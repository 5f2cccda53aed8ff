"""A one-shot search killed mid-way and restarted with resume=true ends exactly where an
uninterrupted one does: epoch checkpoints (safetensors + JSON), log lines of redone epochs dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import ZooCli, one_error_line
from helpers.resume import ONESHOT, SearchKilled, oneshot_search
from helpers.tasks import TINY, digits_task

from zoo.runners.checkpoint import STATE, TENSORS, EpochCheckpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow  # three supernet searches per strategy (25 s of CPU in all)
@pytest.mark.parametrize("name", list(ONESHOT))
def test_killed_search_resumes_to_the_uninterrupted_result(tmp_path: Path, name: str) -> None:
    whole, whole_log, _ = oneshot_search(name, tmp_path / "whole", resume=False)
    with pytest.raises(SearchKilled):
        oneshot_search(name, tmp_path / "killed", resume=False, kill_after=2)
    saved = json.loads((tmp_path / "killed" / STATE).read_text())
    assert saved["meta"]["epoch"] == 1 and (tmp_path / "killed" / TENSORS).is_file()
    resumed, resumed_log, _ = oneshot_search(name, tmp_path / "killed", resume=True)
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


@pytest.mark.parametrize("killed_before", [STATE, TENSORS])
def test_a_save_killed_between_its_two_files_restores_a_whole_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_before: str
) -> None:
    """A kill just before the JSON is replaced restores the previous epoch; just after (the tensors not yet in
    place), the new one: never a refused or mixed pair."""
    import os

    import torch

    net = torch.nn.Linear(3, 2)
    ckpt = EpochCheckpoint(tmp_path, resume=True)
    ckpt.save("DARTS", {"net": net}, {"epoch": 1})
    first = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight.add_(1.0)
    second = {k: v.clone() for k, v in net.state_dict().items()}
    real_replace = os.replace

    def killed(src: object, dst: object) -> None:
        if Path(str(dst)).name == killed_before:
            raise KeyboardInterrupt  # the process dies here
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save("DARTS", {"net": net}, {"epoch": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    fresh = torch.nn.Linear(3, 2)
    meta = EpochCheckpoint(tmp_path, resume=True).restore("DARTS", {"net": fresh})
    expected, state = ({"epoch": 1}, first) if killed_before == STATE else ({"epoch": 2}, second)
    assert meta == expected
    assert all(torch.equal(fresh.state_dict()[k], state[k]) for k in state)
    ckpt.save("DARTS", {"net": net}, {"epoch": 3})  # the next save leaves one pair, no pending tensors
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([STATE, TENSORS])


def test_cli_one_shot_run_refuses_to_overwrite_and_resumes(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    args = ["search=darts", "search.epochs=2", "search.warmup_epochs=0", *TINY, "trainer.epochs=1", "task.model.layers=2", "threads=1"]
    args.append("data.test_fraction=0.8")  # a fifth of digits: the refusal and the resume are checked, not the accuracy
    first = zoo_cli.run(*args, run_dir=run)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = (run / "search_log.jsonl").read_text().splitlines()
    assert "resume=true" in one_error_line(zoo_cli.run(*args, run_dir=run))
    again = zoo_cli.run(*args, "resume=true", run_dir=run)  # the run is complete: nothing runs again
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "search_log.jsonl").read_text().splitlines() == lines
    assert json.loads((run / "genotype.json").read_text()) == json.loads((run / "metrics.json").read_text())["genotype"]
