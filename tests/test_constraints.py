"""Size and latency constraints (zoo/constraints.py): values refused in one line before any work, the final
width fitted by bisection to the largest that meets them, and multi-trial candidates that no width fits logged
as infeasible and never trained. Every task and strategy kind: tests/contract/test_task_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.tasks import digits_task

from zoo.__main__ import compose_config
from zoo.config_values import ConfigError, count_value
from zoo.constraints import Constraints, cost_at, count_flops, fit_width, widths_at
from zoo.pipeline import build, build_checks, finish, search
from zoo.runners.local import read_log

pytestmark = pytest.mark.usefixtures("one_thread")


def smallest_width(task: object) -> int:
    """The step (and smallest value) of the task's leading width key."""
    return next(iter(task.width_keys.values()))  # type: ignore[attr-defined]


TINY_SUPERNET = ["task.supernet.init_channels=4", "task.supernet.layers=3", "trainer.batch_size=32"]


@pytest.mark.parametrize(
    "text, value", [("500k", 500_000), ("2M", 2_000_000), ("1.5g", 1_500_000_000), (3, 3), ("250000", 250_000), (2.5e6, 2_500_000)]
)
def test_counts_read_with_decimal_prefixes(text: object, value: int) -> None:
    assert count_value(text) == value


@pytest.mark.parametrize(
    "override, words",
    [
        ("constraints.params=-1", "constraints.params=-1 is invalid; allowed: null or a positive count such as 500000, 500k, 2M or 1.5G"),
        ("constraints.params=abc", "constraints.params='abc' is invalid; allowed: null or a positive count"),
        ("constraints.params=0", "constraints.params=0 is invalid"),
        ("constraints.flops=5X", "constraints.flops='5X' is invalid"),
        ("constraints.latency_ms=0", "constraints.latency_ms=0 is invalid; allowed: null or a number > 0"),
        ("constraints.latency_ms=fast", "constraints.latency_ms='fast' is invalid"),
        ("constraints.latency_ms=nan", "constraints.latency_ms=nan is invalid; allowed: null or a number > 0"),
        ("constraints.latency_ms=inf", "constraints.latency_ms=inf is invalid"),
        ("task.baseline.params=2M task.baseline.model=resnet18", "task.baseline.params=2M is invalid with task.baseline.model=resnet18"),
        ("task.baseline.model=notamodel", "task.baseline.model='notamodel' is not a timm model"),
        ("mode=finetune checkpoint=x constraints.params=20k", "constraints.params is invalid with mode=finetune"),
    ],
)
def test_bad_constraints_fail_in_one_line_before_any_work(override: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        build_checks(compose_config(["task=classification", "search=random", *override.split()]))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_constraint_without_a_trained_network_is_refused() -> None:
    """NAS-Bench-201 answers from its tables: there is no network whose width or latency could be fitted."""
    cfg = compose_config(["space=nb201", "estimate=nb201", "search=random", "constraints.latency_ms=3"])
    with pytest.raises(ConfigError, match=r"constraints are invalid with estimate=nb201, which answers from tables"):
        build_checks(cfg)


def test_fit_width_gives_the_largest_width_within_every_constraint() -> None:
    task, space = digits_task([])
    g = space.sample(np.random.default_rng(1))
    configured = cost_at(task, g, widths_at(task, int(task.size_config()["init_channels"])), {"flops"})
    limits = Constraints(params=configured["params"] // 3, flops=configured["flops"] // 2)
    fitted = fit_width(task, g, limits)
    assert fitted.feasible and not limits.exceeded(fitted.cost)
    width, step = fitted.widths["init_channels"], smallest_width(task)
    assert step <= width < int(task.size_config()["init_channels"]) and width % step == 0
    wider = cost_at(task, g, {"init_channels": width + step}, {"flops"})
    assert limits.exceeded(wider)  # one step wider breaks one of them: the largest width that fits
    with task.scaled_to(fitted.widths):
        model = task.build_model(g)
    assert task.count_parameters(model) == fitted.cost["params"] and count_flops(model, task.example_input()) == fitted.cost["flops"]
    assert task.width_overrides == {}  # fitting leaves the task as it was


def test_infeasible_candidates_are_logged_with_their_cost_and_never_trained(tmp_path: Path) -> None:
    """A parameter limit between the smallest-width costs of the space's architectures: the random search's
    candidates above it are logged infeasible (no validation accuracy: never trained) and told the worst reward
    seen so far; the winner is a feasible one, retrained at the width fitted to the limit."""
    task, space = digits_task([])
    rng = np.random.default_rng(7)
    smallest = [cost_at(task, space.sample(rng), widths_at(task, smallest_width(task)), set())["params"] for _ in range(24)]
    limit = int(np.median(smallest))
    overrides = ["task=classification", "data=digits", "search=random", "search.budget=8", "trainer.estimate_epochs=1", "trainer.epochs=1"]
    cfg = compose_config([*overrides, f"constraints.params={limit}", "progress=false", "data.test_fraction=0.8"])
    run = build(cfg, tmp_path)
    metrics = finish(run, search(run))
    log = read_log(tmp_path / "search_log.jsonl")
    infeasible = [r["result"] for r in log if r["result"].get("infeasible")]
    trained = [r["result"] for r in log if not r["result"].get("infeasible")]
    assert infeasible and trained, "the limit should split the candidates"
    assert all(r["final_cost"]["params"] > limit and "valid_accuracy" not in r for r in infeasible)
    assert all(r["final_cost"]["params"] <= limit and "valid_accuracy" in r for r in trained)
    history = json.loads((tmp_path / "strategy_state.json").read_text())["history"]
    told = [r for _, r in history]
    for i, r in enumerate(told):
        if r.get("infeasible"):
            before = [t["reward"] for t in told[:i] if not t.get("infeasible")]
            assert r["reward"] == (min(before) if before else 0.0)
    assert metrics["search_infeasible"] == len(infeasible)
    assert metrics["params"] <= limit and metrics["constraints"]["params"]["met"]


def test_spos_evolution_keeps_to_architectures_that_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a parameter limit that half of the space breaks at every width, ``spos``'s evolution evaluates only
    architectures that fit (the pipeline hands it ``problem.feasible``), and returns one of them."""
    from zoo.constraints import fits_at_some_width
    from zoo.search.spos import SPOS

    small = ["task.model.init_channels=4", "task.model.layers=3"]
    task, space = digits_task(small)
    rng = np.random.default_rng(7)
    smallest = [cost_at(task, space.sample(rng), widths_at(task, smallest_width(task)), set())["params"] for _ in range(24)]
    limit = int(np.median(smallest))
    evaluated: list[object] = []
    inner = SPOS._evaluate

    def spy(net, problem, genotype, calibration):  # type: ignore[no-untyped-def]
        evaluated.append(genotype)
        return inner(net, problem, genotype, calibration)

    monkeypatch.setattr(SPOS, "_evaluate", staticmethod(spy))
    hp = ["search=spos", "search.epochs=1", "search.population_size=4", "search.generations=2", "search.parents=2", "search.bn_batches=1"]
    overrides = ["task=classification", "data=digits", "data.test_fraction=0.8", *small, *TINY_SUPERNET, *hp]
    cfg = compose_config([*overrides, f"constraints.params={limit}", "progress=false"])
    run = build(cfg, tmp_path)
    found = search(run)
    probes = {
        json.dumps(json.loads(line)["genotype"], sort_keys=True)
        for line in (tmp_path / "search_log.jsonl").read_text().splitlines()
        if '"supernet"' in line
    }
    chosen = [g for g in evaluated if json.dumps(g.to_json(), sort_keys=True) not in probes]  # the evolution's, not the epoch probes
    limits = Constraints(params=limit)
    assert len(chosen) >= 6 and all(fits_at_some_width(run.task, g, limits) for g in chosen)
    assert fits_at_some_width(run.task, found, limits)


def test_darts_cost_term_leans_the_derived_cell_to_cheaper_ops(tmp_path: Path) -> None:
    """With constraints, ``darts`` adds ``search.cost_weight`` x expected / equal-weights size of the supernet's
    mixed edges to the architecture loss: the same search with the term derives a cell with fewer parameters at the
    same width than without it (``search.cost_weight=0``)."""
    small = ["task.model.init_channels=8", "task.model.layers=3"]
    base = ["task=classification", "data=digits", "data.test_fraction=0.8", "search=darts", "search.epochs=2", "search.warmup_epochs=0"]
    sizes = {}
    for weight in (0.0, 10.0):
        cfg = compose_config([*base, *small, *TINY_SUPERNET, "constraints.params=10M", f"search.cost_weight={weight}", "progress=false"])
        run = build(cfg, tmp_path / str(weight))
        genotype = search(run)
        sizes[weight] = cost_at(run.task, genotype, {"init_channels": 8}, set())["params"]
    assert sizes[10.0] < sizes[0.0], sizes
