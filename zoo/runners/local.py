"""Drives a multi-trial strategy: ask, evaluate, log, tell, checkpoint; resumable.

Every evaluated candidate is appended (and flushed) to ``search_log.jsonl`` the moment its
evaluation finishes, whichever worker ran it; the strategy is told in ask order once its batch
is in, and its ``state_dict`` is written atomically after each tell. On resume the state is
loaded, the strategy re-asks the candidates that were in flight, and any candidate found in
the log is answered from it, so no finished evaluation is lost or repeated. Where the
candidates run is a :class:`~zoo.runners.base.Runner` (``runner=local|process|ray``); this module
holds the loop and the in-process :class:`LocalRunner`.

A candidate that fails (its evaluation raises, or its worker keeps dying) is logged with
``"failed": true`` and its error, and told to the strategy as the worst result seen so far,
so the search goes on (:meth:`~zoo.search.base.Strategy.best` never picks it); if the first two
batches' worth of candidates all fail, the search stops with the error. A resumed search runs the
failed candidates it re-asks again (the cause may have been fixed in between). A candidate that
breaks the run's constraints at every width (``"infeasible": true`` in its result, not trained:
:class:`zoo.constraints.ConstrainedEstimator`) is told the worst result seen so far in the same way:
every multi-trial strategy learns from that penalised reward, and it never wins.

One process at a time writes a run directory: the first :class:`JsonlLog` a process opens
there takes an exclusive lock (:func:`hold_run_lock`) that it keeps until it ends, so a
``resume=true`` started while the run is still alive is refused instead of redoing its
epochs or candidates next to it (each line would be logged twice).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from zoo.atomic import save_json_atomic
from zoo.config_values import ConfigError
from zoo.runners.base import RUNNERS, Failure, Outcome, Runner, timed
from zoo.search.base import Strategy
from zoo.space.genotype import genotype_key


def read_log(path: Path) -> list[dict[str, Any]]:
    """Reads a JSONL log, ignoring a torn last line left by a crash."""
    if not path.exists():
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


RUN_LOCK = ".zoo_run.lock"
_held_locks: dict[str, int] = {}  # resolved run directory -> descriptor of its lock, for the life of the process


class RunDirectoryBusy(FileExistsError):
    """Another live process is writing the run directory."""


def hold_run_lock(directory: str | Path) -> None:
    """Makes this process the only writer of ``directory`` until it ends.

    An exclusive POSIX record lock (``lockf``) on ``directory/.zoo_run.lock`` (the file is kept
    and holds the owner's pid, for the message). The kernel drops it when the process ends,
    SIGKILL included, so a killed run leaves no stale lock; unlike ``flock`` it is not shared
    with forked children, so pool workers orphaned by a kill do not keep it. Taken once per
    process and directory (later calls return at once, and the file is never reopened: closing
    any descriptor of it would drop the lock); :class:`RunDirectoryBusy` (a ``FileExistsError``)
    if another process holds it.
    """
    directory = Path(directory)
    key = str(directory.resolve())
    if key in _held_locks:
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise RunDirectoryBusy(
            f"{directory} is in use by another running zoo process{f' (pid {owner})' if owner.isdigit() else ''}; "
            "let it finish, or end it, before resuming there"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held_locks[key] = fd


class JsonlLog:
    """Append-only JSONL file, flushed and fsynced line by line.

    Opening one makes this process the only writer of the file's directory (:func:`hold_run_lock`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        hold_run_lock(self.path.parent)
        # drop a torn tail so appended lines start on a fresh line
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


@RUNNERS.register("local")
class LocalRunner(Runner):
    """Evaluates the candidates of a batch one after another, in this process."""

    def __init__(self, evaluate: Callable[[Any], dict[str, Any]], workers: int = 1) -> None:
        super().__init__(workers)
        self._evaluate = evaluate

    def evaluate(self, batch: list[tuple[int, Any]]) -> Iterator[Outcome]:
        for i, genotype in batch:
            result, seconds = timed(self._evaluate, genotype)
            yield i, result, seconds


class CandidatesFailed(ConfigError):
    """Every candidate so far failed: the search cannot rank anything."""


def failed_result(
    strategy: Strategy, batch_results: list[dict[str, Any]], failure: Failure, log_path: Path, workers: int
) -> dict[str, Any]:
    """What a failed candidate is told: the worst result seen so far (0 before any success), marked failed.

    :meth:`Strategy.best` never picks a failed candidate. When the first two batches' worth of
    candidates have all failed, the search stops: the evaluation itself is broken."""
    seen = [r for _, r in strategy.successes()] + batch_results
    if seen:
        return {**min(seen, key=lambda r: r["reward"]), "failed": True}
    if len(strategy.history) + 1 >= 2 * workers:
        raise CandidatesFailed(
            f"the first {len(strategy.history) + 1} candidates all failed (last: {failure.error}); details in {log_path} and above"
        )
    return {**{name: 0.0 for name in strategy.objectives}, "reward": 0.0, "failed": True}


def infeasible_result(strategy: Strategy, batch_results: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    """What a candidate that breaks the constraints at every width is told: the worst result seen so far
    (0 before any), marked infeasible, with its cost; :meth:`Strategy.best` never picks it."""
    seen = [r for _, r in strategy.successes()] + batch_results
    worst = min(seen, key=lambda r: r["reward"]) if seen else {**{name: 0.0 for name in strategy.objectives}, "reward": 0.0}
    stand_in = {k: v for k, v in worst.items() if k not in ("final_cost", "final_widths")}
    return {**stand_in, "infeasible": True, "final_cost": result["final_cost"], "final_widths": result["final_widths"]}


def run_multi_trial(
    strategy: Strategy,
    evaluate: Callable[[Any], dict[str, Any]] | None,
    run_dir: str | Path,
    resume: bool = False,
    workers: int = 1,
    progress: bool = True,
    stop_after: int | None = None,
    runner: Runner | None = None,
    deadline: float | None = None,
) -> Strategy:
    """Runs ``strategy`` until its budget is spent; returns it (``strategy.best()`` is the winner).

    ``runner`` evaluates the candidates (default: ``evaluate`` in this process, batches of
    ``workers``). ``deadline`` (a ``time.time()`` value, from ``search.time_budget``): no batch is
    asked after it, once one candidate has been told; ``strategy.stopped_by`` is then
    ``"time_budget"``. ``stop_after`` ends the loop after that many new tells (used to test resume).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(run_dir / "search_log.jsonl")
    state_path = run_dir / "strategy_state.json"
    cache: dict[str, dict[str, Any]] = {}
    if resume:  # finished candidates are answered from the log; failed ones run again (the cause may be fixed)
        for rec in read_log(log.path):
            if not rec.get("failed"):
                cache[rec["key"]] = rec["result"]
        if state_path.exists():
            strategy.load_state_dict(json.loads(state_path.read_text()))
    elif log.path.exists() and log.path.stat().st_size:
        raise FileExistsError(f"{log.path} exists; pass resume=true to continue that search or use a new run directory")
    if runner is None:
        if evaluate is None:
            raise TypeError("run_multi_trial needs evaluate or runner")
        runner = LocalRunner(evaluate, workers)
    strategy.stopped_by = None
    cache_failures: dict[str, Failure] = {}  # this session's failures, told as such
    bar = tqdm(
        total=strategy.budget, initial=strategy.n_told, desc=f"search ({type(strategy).__name__})", disable=not progress, leave=False
    )
    told_now = 0
    try:
        while not strategy.done and (stop_after is None or told_now < stop_after):
            if deadline is not None and strategy.n_told > 0 and time.time() >= deadline:
                strategy.stopped_by = "time_budget"
                break
            n = min(runner.workers, strategy.budget - strategy.n_told)
            if stop_after is not None:
                n = min(n, stop_after - told_now)
            first = strategy.n_told
            asked = strategy.ask(n)
            keys = [genotype_key(g) for g in asked]
            todo = [(i, asked[i]) for i, k in enumerate(keys) if k not in cache and k not in keys[:i]]
            for i, outcome, seconds in runner.evaluate(todo):
                record: dict[str, Any] = {"trial": first + i, "key": keys[i], "genotype": asked[i].to_json()}
                if isinstance(outcome, Failure):
                    record.update(failed=True, error=outcome.error, attempts=outcome.attempts)
                    cache_failures[keys[i]] = outcome
                else:
                    record["result"] = outcome
                    cache[keys[i]] = outcome
                record.update(seconds=round(seconds, 3), finished_at=round(time.time(), 3))
                log.append(record)
            batch_ok = [cache[k] for k in keys if k in cache and not cache[k].get("infeasible")]
            for g, k in zip(asked, keys):
                if k in cache and cache[k].get("infeasible"):
                    result = infeasible_result(strategy, batch_ok, cache[k])
                elif k in cache:
                    result = cache[k]
                else:
                    result = failed_result(strategy, batch_ok, cache_failures[k], log.path, runner.workers)
                strategy.tell(g, result)
                save_json_atomic(state_path, strategy.state_dict())
                told_now += 1
                bar.update(1)
                if strategy.successes():
                    bar.set_postfix(best=f"{strategy.best()[1]['reward']:.4f}")
    finally:
        bar.close()
        runner.close()
    return strategy
