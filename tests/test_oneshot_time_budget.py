"""One-shot searches under a wall-clock budget (``OneShotStrategy.deadline``, set from
``search.time_budget``): training stops after the epoch in progress, the genotype comes from what
was trained, and the log says the budget ended it. Real training on digits at tiny sizes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers.tasks import digits_task

from zoo.search.base import STRATEGIES

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["task.supernet.init_channels=4", "task.supernet.layers=3", "space.steps=2", "task.supernet.multiplier=2"]
SMALL += ["trainer.batch_size=32", "data.test_fraction=0.8"]
HP = {
    "darts": {"epochs": 3, "warmup_epochs": 0},
    "pc_darts": {"epochs": 3, "warmup_epochs": 0, "partial_channels": 2},
    "spos": {"epochs": 3, "population_size": 4, "generations": 3, "parents": 2, "bn_batches": 2},
}


def _search(name: str, deadline: float | None) -> tuple[Any, Any, list[dict[str, Any]], Any]:
    task, space = digits_task(SMALL)
    strategy = STRATEGIES.get(name)(progress=False, **HP[name])
    strategy.deadline = deadline
    records: list[dict[str, Any]] = []
    genotype = strategy.search(task.one_shot_problem(), log=records.append)
    return genotype, strategy, records, space


@pytest.mark.parametrize("name", ["darts", "pc_darts"])
def test_a_passed_deadline_ends_darts_after_one_epoch_with_a_genotype(name: str) -> None:
    genotype, strategy, records, space = _search(name, deadline=time.time() - 1)
    assert [r["epoch"] for r in records if "reward" in r] == [1]
    assert records[-1] == {"stopped": "time_budget", "epoch": 1} and len(records) == 2
    assert strategy.stopped_by == "time_budget"
    assert space.decode(space.encode(genotype)) == genotype and genotype.to_json() == records[0]["genotype"]  # the trained alpha's


def test_a_passed_deadline_cuts_spos_training_and_evolution_at_their_first_boundaries() -> None:
    genotype, strategy, records, space = _search("spos", deadline=time.time() - 1)
    phases = [(r.get("phase"), r.get("epoch", r.get("generation")), r.get("stopped")) for r in records]
    assert phases == [
        ("supernet", 1, None),
        (None, 1, "time_budget"),  # {"stopped": "time_budget", "epoch": 1}
        ("evolution", 1, None),  # one generation is always scored, so the genotype comes from the supernet
        (None, 1, "time_budget"),  # {"stopped": "time_budget", "generation": 1}
    ]
    assert records[1] == {"stopped": "time_budget", "epoch": 1} and records[3] == {"stopped": "time_budget", "generation": 1}
    assert strategy.stopped_by == "time_budget" and genotype.to_json() == records[2]["genotype"]
    assert space.decode(space.encode(genotype)) == genotype


def test_a_future_deadline_changes_nothing() -> None:
    genotype, strategy, records, _ = _search("darts", deadline=time.time() + 3600)
    assert [r["epoch"] for r in records] == [1, 2, 3] and not any("stopped" in r for r in records)
    assert strategy.stopped_by is None and genotype.to_json() == records[-1]["genotype"]
