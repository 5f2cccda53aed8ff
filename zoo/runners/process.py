"""``runner=process``: candidates evaluated in a pool of worker processes on this machine.

Workers are started with ``spawn`` (a forked child of a process that already ran torch can hang
in OpenMP); each rebuilds the task from the run's config on its first candidate
(:func:`zoo.pipeline.evaluate_in_worker`), then receives genotypes as JSON, and ends when its
driver process is gone. Each worker uses ``threads`` torch threads (default: the machine's cores
shared out among the workers). When a worker process dies (SIGKILL, out of memory) the pool is
broken for every candidate in flight, and nothing says whose worker died: those candidates are run
again one at a time on fresh pools, so a death is then charged to the candidate that caused it,
and one that has used ``runner.max_retries`` retries is reported as failed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from zoo.runners.base import REMOTE_SPECS, RUNNERS, Failure, Outcome, Runner, WorkerEvaluate

_job: dict[str, Any] = {}


def _exit_with_parent(parent: int) -> None:
    """A worker whose driver died (SIGKILL leaves the pool no chance to stop it) ends too, instead of
    training on, orphaned, beside the resumed run."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _start_worker(evaluate: WorkerEvaluate, cfg: dict[str, Any], run_dir: str, threads: int, driver: int) -> None:
    import torch

    threading.Thread(target=_exit_with_parent, args=(driver,), daemon=True).start()  # the driver may be gone already
    torch.set_num_threads(threads)
    _job.update(evaluate=evaluate, cfg=cfg, run_dir=run_dir)


def _run_one(genotype_json: Any) -> tuple[Any, float]:
    return _job["evaluate"](_job["cfg"], _job["run_dir"], genotype_json)


@RUNNERS.register("process")
class ProcessRunner(Runner):
    specs = REMOTE_SPECS

    def __init__(
        self,
        evaluate: WorkerEvaluate,
        cfg: dict[str, Any],
        run_dir: str,
        workers: int = 2,
        max_retries: int = 1,
        threads: int | None = None,
    ) -> None:
        super().__init__(workers)
        self.evaluate_fn = evaluate
        self.cfg, self.run_dir, self.max_retries = cfg, str(run_dir), max_retries
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.evaluate_fn, self.cfg, self.run_dir, self.threads, os.getpid()),
            )
        return self._pool

    def evaluate(self, batch: list[tuple[int, Any]]) -> Iterator[Outcome]:
        attempts = {i: 0 for i, _ in batch}
        queue = [(i, g.to_json()) for i, g in batch]
        solo = False  # after a broken pool: one candidate at a time, so a death is charged to the candidate that caused it
        while queue:
            pool = self._fresh_pool()
            running, queue = (queue[:1], queue[1:]) if solo else (queue, [])
            futures = {pool.submit(_run_one, g): (i, g) for i, g in running}
            broken = False
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    i, g = futures[f]
                    try:
                        result, seconds = f.result()
                    except BrokenProcessPool:
                        broken = True
                        if solo or len(futures) == 1:
                            attempts[i] += 1
                        if attempts[i] > self.max_retries:
                            error = f"its worker process died {attempts[i]} times (runner.max_retries={self.max_retries})"
                            yield i, Failure(error, attempts[i]), 0.0
                        else:
                            queue.append((i, g))
                        continue
                    attempts[i] += 1
                    if isinstance(result, Failure):
                        result = Failure(result.error, attempts[i])
                    yield i, result, seconds
            if broken:
                solo = True
                self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C does not wait for the candidates in flight
            self._pool = None
