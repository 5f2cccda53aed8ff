"""Where a multi-trial search evaluates its candidates: the runner interface and registry.

A runner (config group ``runner``: ``local``, ``process`` or ``ray``) takes the candidates of one
asked batch and yields each one's outcome the moment it finishes, in whatever order they finish;
the loop in :mod:`zoo.runners.local` logs each at once and tells the strategy in ask order. The
batch is ``runner.workers`` candidates whatever the runner, so a search depends on that number
and never on which runner ran it or on the workers' timing: ``runner=local``, ``process`` and
``ray`` with the same ``runner.workers`` make the same search.

Remote workers never receive the parent's in-memory task: each worker process rebuilds the
task from the run's config once (``zoo.pipeline.evaluate_in_worker``, handed to the runner as
its ``evaluate`` function) and then receives only genotypes as JSON. A candidate whose evaluation raises, or whose worker dies more than
``runner.max_retries`` times, comes back as a :class:`Failure`; the search goes on.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.config_values import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT, Spec, Text
from zoo.registry import Registry


@dataclass(frozen=True)
class Failure:
    """A candidate that could not be evaluated: ``error`` is one line, ``attempts`` how often it was run."""

    error: str
    attempts: int = 1


Outcome = tuple[int, "dict[str, Any] | Failure", float]  # (index in the batch, result or failure, seconds it took)


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line, with the innermost frame of our own code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/zoo/" in f.filename or "/tasks/" in f.filename]
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}{where}"


def timed(evaluate: Callable[[Any], dict[str, Any]], genotype: Any) -> tuple[dict[str, Any] | Failure, float]:
    """Runs one evaluation; an exception becomes a :class:`Failure` (its traceback is printed)."""
    t0 = time.time()
    try:
        return evaluate(genotype), time.time() - t0
    except Exception as e:
        traceback.print_exc()
        return Failure(error_line(e)), time.time() - t0


class Runner(ABC):
    """Evaluates batches of candidates; ``workers`` is the batch size the search asks for."""

    specs: dict[str, Spec] = {"workers": POSITIVE_INT}

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    @abstractmethod
    def evaluate(self, batch: list[tuple[int, Any]]) -> Iterator[Outcome]:
        """Yields ``(index, result or Failure, seconds)`` for each ``(index, genotype)``, as each finishes."""

    def close(self) -> None:
        """Releases workers (pools, Ray connections)."""


RUNNERS: Registry[type[Runner]] = Registry("runner", "zoo.runners")

REMOTE_SPECS: dict[str, Spec] = {"workers": POSITIVE_INT, "max_retries": NON_NEGATIVE_INT}
RAY_SPECS: dict[str, Spec] = {**REMOTE_SPECS, "address": Text(null=True), "num_cpus": NON_NEGATIVE, "num_gpus": NON_NEGATIVE}

WorkerEvaluate = Callable[[dict[str, Any], str, Any], tuple["dict[str, Any] | Failure", float]]
"""The function a remote worker runs per candidate: ``(config, run_dir, genotype JSON) -> (result or Failure, seconds)``.
The pipeline passes :func:`zoo.pipeline.evaluate_in_worker` (picklable by name; runners never import the pipeline)."""
