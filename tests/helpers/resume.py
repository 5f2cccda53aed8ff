"""Runs killed at chosen moments, in-process, for the resume tests: a one-shot search killed after an
epoch's log line (before its checkpoint), a retraining killed after a saved epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch

from helpers.tasks import TINY, digits_task
from zoo.runners.checkpoint import EpochCheckpoint, TrainingCheckpoints
from zoo.runners.local import JsonlLog
from zoo.search.base import STRATEGIES

# the one-shot strategies at tiny budgets (3 epochs), by name
ONESHOT = {
    "darts": {"epochs": 3, "warmup_epochs": 0, "arch_lr": 0.003},
    "pc_darts": {"epochs": 3, "partial_channels": 2, "warmup_epochs": 0, "arch_lr": 0.003},
    "spos": {"epochs": 3, "population_size": 4, "generations": 2, "parents": 2},
}


class SearchKilled(Exception):
    """Raised by :func:`oneshot_search`'s log after ``kill_after`` epochs: a kill at the worst moment."""


class RetrainKilled(Exception):
    """Raised by :class:`KilledAfter` right after the chosen epoch is saved."""


class SearchRun(NamedTuple):
    genotype: Any
    log: list[dict[str, Any]]  # the search log's lines
    supernet: dict[str, torch.Tensor]  # the supernet's final state


def oneshot_search(
    name: str,
    run: Path,
    resume: bool,
    kill_after: int | None = None,
    make_task: Any = None,
    hparams: dict[str, Any] | None = None,
) -> SearchRun:
    """One search as a fresh process would run it: new task, supernet, loaders and strategy (by default
    on a fifth of digits, ``data.test_fraction=0.8``: what is checked is the resume, not the accuracy);
    ``hparams``: the strategy's, instead of :data:`ONESHOT`'s."""
    task = make_task() if make_task is not None else digits_task([*TINY, "data.test_fraction=0.8"])[0]
    problem = task.one_shot_problem()
    log = JsonlLog(run / "search_log.jsonl")
    problem.checkpoint = EpochCheckpoint(run, resume=resume, log_path=log.path).track(problem.train_loader, problem.valid_loader)
    epochs_logged = 0

    def append(record: dict[str, Any]) -> None:
        nonlocal epochs_logged
        log.append(record)
        epochs_logged += "epoch" in record
        if kill_after is not None and epochs_logged == kill_after:
            raise SearchKilled  # after the log line of this epoch, before its checkpoint: the worst moment

    strategy = STRATEGIES.get(name)(progress=False, **(ONESHOT[name] if hparams is None else hparams))
    genotype = strategy.search(problem, log=append)
    lines = [json.loads(l) for l in log.path.read_text().splitlines()]
    return SearchRun(genotype, lines, {k: v.clone() for k, v in problem.supernet.state_dict().items()})


class KilledAfter(TrainingCheckpoints):
    """Crashes the training right after epoch ``epoch`` of model ``name`` is saved."""

    def __init__(self, directory: Path, name: str, epoch: int) -> None:
        super().__init__(directory, resume=False)
        self.name, self.epoch = name, epoch

    def for_model(self, name: str) -> EpochCheckpoint:
        ckpt = super().for_model(name)
        if name == self.name:
            save = ckpt.save

            def save_then_die(kind: str, objects: dict[str, Any], meta: dict[str, Any], rng: Any = None) -> None:
                save(kind, objects, meta, rng)
                if meta["epoch"] == self.epoch:
                    raise RetrainKilled

            ckpt.save = save_then_die  # type: ignore[method-assign]
        return ckpt


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
