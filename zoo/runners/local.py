"""Drives a multi-trial strategy: ask, evaluate, log, tell, checkpoint; resumable.

Every evaluated candidate is appended (and flushed) to ``search_log.jsonl`` before the
strategy is told, and the strategy's ``state_dict`` is written atomically after each
tell. On resume the state is loaded and any candidate the strategy asks again is
answered from the log, so no finished evaluation is lost or repeated. Batches of
``workers`` candidates are evaluated in a process pool when ``workers > 1``; results
are told in ask order, so a run is reproducible whatever the pool's timing.

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
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from zoo.search.base import Strategy
from zoo.space.genotype import genotype_key, save_json_atomic


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


def run_multi_trial(
    strategy: Strategy,
    evaluate: Callable[[Any], dict[str, Any]],
    run_dir: str | Path,
    resume: bool = False,
    workers: int = 1,
    progress: bool = True,
    stop_after: int | None = None,
    executor: Executor | None = None,
) -> Strategy:
    """Runs ``strategy`` until its budget is spent; returns it (``strategy.best()`` is the winner).

    ``stop_after`` ends the loop after that many new tells (used to test resume).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(run_dir / "search_log.jsonl")
    state_path = run_dir / "strategy_state.json"
    cache: dict[str, dict[str, Any]] = {}
    if resume:
        for rec in read_log(log.path):
            cache[rec["key"]] = rec["result"]
        if state_path.exists():
            strategy.load_state_dict(json.loads(state_path.read_text()))
    elif log.path.exists() and log.path.stat().st_size:
        raise FileExistsError(f"{log.path} exists; pass resume=true to continue that search or use a new run directory")

    own_pool = executor is None and workers > 1
    pool = ProcessPoolExecutor(workers) if own_pool else executor
    bar = tqdm(
        total=strategy.budget, initial=strategy.n_told, desc=f"search ({type(strategy).__name__})", disable=not progress, leave=False
    )
    told_now = 0
    try:
        while not strategy.done and (stop_after is None or told_now < stop_after):
            n = min(workers, strategy.budget - strategy.n_told)
            if stop_after is not None:
                n = min(n, stop_after - told_now)
            asked = strategy.ask(n)
            keys = [genotype_key(g) for g in asked]
            todo = [i for i, k in enumerate(keys) if k not in cache]
            started = time.time()
            if pool is not None and len(todo) > 1:
                futures = {i: pool.submit(evaluate, asked[i]) for i in todo}
                fresh = {i: f.result() for i, f in futures.items()}
            else:
                fresh = {i: evaluate(asked[i]) for i in todo}
            for i, (g, k) in enumerate(zip(asked, keys)):
                if i in fresh:
                    result = fresh[i]
                    cache[k] = result
                    log.append(
                        {
                            "trial": strategy.n_told,
                            "key": k,
                            "genotype": g.to_json(),
                            "result": result,
                            "seconds": (time.time() - started) / max(len(fresh), 1),
                        }
                    )
                strategy.tell(g, cache[k])
                save_json_atomic(state_path, strategy.state_dict())
                told_now += 1
                bar.update(1)
                bar.set_postfix(best=f"{strategy.best()[1]['reward']:.4f}")
    finally:
        bar.close()
        if own_pool and pool is not None:
            pool.shutdown()
    return strategy
