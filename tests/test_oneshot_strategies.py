"""One-shot strategies beyond DARTS (pc_darts, spos) on real digits data at tiny budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.cli import ZooCli, one_error_line
from helpers.tasks import TINY, digits_task, max_off_uniform

from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registered_with_configs() -> None:
    for name in ("pc_darts", "spos"):
        assert issubclass(STRATEGIES.get(name), OneShotStrategy)
        assert (ROOT / "zoo" / "conf" / "search" / f"{name}.yaml").is_file()


@pytest.mark.slow
def test_pc_darts_finds_a_genotype_that_learns_digits() -> None:
    task, space = digits_task(TINY)
    problem = task.one_shot_problem()
    records: list[dict[str, Any]] = []
    strategy = STRATEGIES.get("pc_darts")(epochs=3, partial_channels=2, warmup_epochs=0, arch_lr=0.003, progress=False)
    alpha_before = [a.detach().clone() for a in problem.supernet.arch_parameters()]
    genotype = strategy.search(problem, log=records.append)
    assert space.decode(space.encode(genotype)) == genotype
    assert [r["epoch"] for r in records] == [1, 2, 3] and all(0.0 <= r["reward"] <= 1.0 for r in records)
    assert records[-1]["reward"] > 0.4, records  # the PC supernet itself learns (chance is 0.1; measured 0.68)
    assert max_off_uniform(records[-1]["alpha_normal"]) > 1e-3 and max_off_uniform(records[-1]["alpha_reduce"]) > 1e-3  # alpha moved
    assert all(
        torch.equal(a, b) for a, b in zip(alpha_before, problem.supernet.arch_parameters())
    )  # a PC supernet was trained, not the DARTS one
    result = task.estimate(genotype)  # the discrete network trained from scratch
    assert result["reward"] > 0.8, result  # measured 0.97


@pytest.mark.slow
def test_spos_finds_a_genotype_that_learns_digits() -> None:
    task, space = digits_task(TINY)
    problem = task.one_shot_problem()
    records: list[dict[str, Any]] = []
    # 15 epochs: every batch trains one path, so each op gets a few percent of the steps (3 epochs left
    # the supernet at chance, loss above ln 10)
    strategy = STRATEGIES.get("spos")(epochs=15, lr=0.02, population_size=6, generations=3, parents=3, bn_batches=2, progress=False)
    genotype = strategy.search(problem, log=records.append)
    assert space.decode(space.encode(genotype)) == genotype
    supernet = [r for r in records if r["phase"] == "supernet"]
    evolution = [r for r in records if r["phase"] == "evolution"]
    assert [r["epoch"] for r in supernet] == list(range(1, 16)) and [r["generation"] for r in evolution] == [1, 2, 3]
    assert [r["evaluated"] for r in evolution] == [6, 12, 18]  # every generation brings new genotypes
    best = [r["reward"] for r in evolution]
    assert best == sorted(best) and best[0] >= evolution[0]["population_mean"]
    assert evolution[-1]["genotype"] == genotype.to_json()
    # the supernet was trained: random paths with inherited weights score far above chance (0.1)
    assert evolution[0]["population_mean"] > 0.2, evolution[0]  # measured 0.29 (seed 0), 0.32 (seed 1)
    result = task.estimate(genotype)  # the discrete network trained from scratch
    assert result["reward"] > 0.8, result  # measured 0.98


@pytest.mark.parametrize(
    "name,hp,field",
    [
        ("spos", {"parents": 30, "population_size": 20}, "parents"),
        ("spos", {"mutation_prob": 0.0}, "mutation_prob"),
        ("spos", {"population_size": 1}, "population_size"),
        ("spos", {"lr": -0.1}, "lr"),
        ("pc_darts", {"partial_channels": 0}, "partial_channels"),
        ("pc_darts", {"lr": -1.0}, "lr"),
    ],
)
def test_bad_hyper_parameters_are_one_line(name: str, hp: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        STRATEGIES.get(name)(**hp)
    msg = str(err.value)
    assert f"search.{field}=" in msg and "allowed" in msg and "\n" not in msg


def test_partial_channels_must_divide_the_supernet_width_before_training() -> None:
    task, _ = digits_task(TINY)  # init_channels=4
    with pytest.raises(ConfigError, match=r"search.partial_channels=3 is invalid.*init_channels \(4\)"):
        STRATEGIES.get("pc_darts")(partial_channels=3, progress=False).search(task.one_shot_problem())


def test_cli_rejects_bad_spos_value_in_one_line(tmp_path: Path, zoo_cli: ZooCli) -> None:
    out = zoo_cli.run("search=spos", "search.parents=99", run_dir=tmp_path, progress=None, timeout=300)
    assert "search.parents=99" in one_error_line(out), out.stderr


def test_tasks_without_these_supernets_fail_in_one_line() -> None:
    from zoo.estimate.problem import OneShotProblem
    from zoo.space.supernet import SuperNet

    net = SuperNet(num_classes=2, init_channels=4, layers=2, in_chans=1)
    bare = OneShotProblem(net, [], [], lambda m, b: torch.zeros(()), lambda m, l: 0.0)
    with pytest.raises(ValueError, match="this task offers no 'pc_darts' supernet") as err:
        STRATEGIES.get("pc_darts")(progress=False).search(bare)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="search=spos samples genotypes from the task's search space"):
        STRATEGIES.get("spos")(progress=False).search(bare)
