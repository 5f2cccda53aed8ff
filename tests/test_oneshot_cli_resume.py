"""A one-shot search run through the real CLI, killed with SIGKILL and resumed, logs each epoch once.

Issue 9: a resumed DARTS run ended with ``search_log.jsonl`` epochs [1, 2, 3, 3, 4, 4, 5, 5, 6, 6]
("best reward ... over 10 evaluations"). A resume only produces that when the run it continues
is still alive: both processes redo the same epochs and append the same lines. A run directory
now has one writer at a time (``zoo.runners.local.hold_run_lock``), and a resume whose run was
killed before its first checkpoint drops the first epoch's line instead of logging it again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.cli import ROOT, ZooCli, cli_env

from zoo.runners.checkpoint import EpochCheckpoint
from zoo.runners.local import JsonlLog, RunDirectoryBusy

# DARTS on a fifth of digits (test_fraction=0.8), a tiny supernet and retrained model: ~2 s an epoch on one core
ARGS = [
    "search=darts",
    "search.epochs=5",
    "data.test_fraction=0.8",
    "task.supernet.init_channels=4",
    "task.supernet.layers=3",
    "trainer.epochs=1",
    "task.model.init_channels=8",
    "task.model.layers=2",
    "threads=1",
    "progress=false",
]


def _epochs(run: Path) -> list[int]:
    log = run / "search_log.jsonl"
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line)["epoch"])
        except ValueError:
            break  # a line being written
    return out


def _files(run: Path) -> dict[str, bytes | None]:
    """The search's log and checkpoint, and what Hydra and the CLI recorded of the run, as they are on disk."""
    names = ("search_log.jsonl", "oneshot_checkpoint.json", "run_config.json", ".hydra/overrides.yaml", ".hydra/config.yaml")
    return {name: (run / name).read_bytes() if (run / name).exists() else None for name in names}


def _kill_after(proc: subprocess.Popen, run: Path, epochs: int) -> None:
    """SIGKILLs ``proc`` as soon as ``epochs`` epoch lines are in the log (it must still be running)."""
    _wait_for(proc, run, epochs)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def _wait_for(proc: subprocess.Popen, run: Path, epochs: int) -> None:
    deadline = time.time() + 300
    while len(_epochs(run)) < epochs and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended (code {proc.returncode}) before logging {epochs} epochs"


def test_cli_search_killed_twice_resumes_to_the_uninterrupted_log(tmp_path: Path, zoo_cli: ZooCli) -> None:
    whole = tmp_path / "whole"
    done = zoo_cli.run(*ARGS, run_dir=whole)
    assert done.returncode == 0, done.stderr[-3000:]
    whole_lines = (whole / "search_log.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in whole_lines] == [1, 2, 3, 4, 5]

    run = tmp_path / "killed"
    _kill_after(zoo_cli.start(*ARGS, run_dir=run), run, 1)  # may land between epoch 1's log line and its checkpoint

    resumed = zoo_cli.start(*ARGS, "resume=true", run_dir=run)
    try:
        _wait_for(resumed, run, 2)  # the resumed run holds the directory, mid-search
        resumed.send_signal(signal.SIGSTOP)
        before = _files(run)
        try:
            second = zoo_cli.run(*ARGS, "resume=true", run_dir=run)  # a resume while that run is alive: refused, nothing written
        finally:
            resumed.send_signal(signal.SIGCONT)
        assert second.returncode == 2, (second.stdout + second.stderr)[-3000:]
        lines = [l for l in second.stderr.splitlines() if l.strip()]
        assert (
            len(lines) == 1
            and lines[0].startswith("zoo: error: ")
            and f"in use by another running zoo process (pid {resumed.pid})" in lines[0]
        ), lines
        assert _files(run) == before
        _kill_after(resumed, run, 3)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()

    final = zoo_cli.run(*ARGS, "resume=true", run_dir=run)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "over 5 evaluations" in final.stdout, final.stdout[-2000:]
    assert (run / "search_log.jsonl").read_text().splitlines() == whole_lines  # every line, epochs and values
    assert json.loads((run / "genotype.json").read_text()) == json.loads((whole / "genotype.json").read_text())
    m_run, m_whole = (json.loads((d / "metrics.json").read_text()) for d in (run, whole))
    assert m_run["search_evaluations"] == m_whole["search_evaluations"] == 5
    assert m_run["test_accuracy"] == m_whole["test_accuracy"]
    assert not (run / "oneshot_checkpoint.json").exists()


def test_resume_before_the_first_checkpoint_drops_the_logged_epoch(tmp_path: Path) -> None:
    """Killed after epoch 1's log line, before its checkpoint: the resumed search starts over, so
    that line goes (it is written again), instead of staying next to its rerun."""
    log = JsonlLog(tmp_path / "search_log.jsonl")
    log.append({"epoch": 1, "reward": 0.5})
    ckpt = EpochCheckpoint(tmp_path, resume=False, log_path=log.path)
    assert ckpt.restore("DARTS", {}) is None and log.path.read_text().count("\n") == 1  # not resuming: untouched
    ckpt = EpochCheckpoint(tmp_path, resume=True, log_path=log.path)
    assert ckpt.restore("DARTS", {}) is None
    assert log.path.read_text() == ""


def test_a_live_run_directory_has_one_writer_and_a_killed_one_frees_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import pathlib, time
            from zoo.runners.local import JsonlLog
            JsonlLog(pathlib.Path({str(tmp_path)!r}) / "search_log.jsonl")
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(600)
        """),
        ],
        cwd=ROOT,
        env=cli_env(),
    )
    try:
        deadline = time.time() + 120
        while not ready.exists() and holder.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert ready.exists(), "the holder did not start"
        with pytest.raises(RunDirectoryBusy, match=rf"in use by another running zoo process \(pid {holder.pid}\)"):
            JsonlLog(tmp_path / "search_log.jsonl")
        assert isinstance(RunDirectoryBusy("x"), FileExistsError)  # the CLI reports it in one line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    JsonlLog(tmp_path / "search_log.jsonl").append({"epoch": 1})  # the kill released it
    JsonlLog(tmp_path / "search_log.jsonl").append({"epoch": 2})  # and this process may open it again
    assert (tmp_path / "search_log.jsonl").read_text().count("\n") == 2
