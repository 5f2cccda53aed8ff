"""``python -m zoo space=nb201 estimate=nb201 ...`` end to end (table look-ups, seconds), with
the tables of the zoo's nb201 entry fetched into the zoo cache on first use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers.cli import ZooCli, one_error_line
from helpers.nb201_home import nb201_zoo_home  # noqa: F401  (ZOO_HOME: a cache private to the tests)

ROOT = Path(__file__).resolve().parent.parent


NB201 = ["space=nb201", "estimate=nb201"]


def test_cli_search_prints_the_200_epoch_accuracy(tmp_path: Path, zoo_cli: ZooCli) -> None:
    # a fresh, empty zoo cache and a working directory outside the repository: the first run
    # fetches the nb201 entry (shipped in the package) into $ZOO_HOME/hub/nb201/REVISION/
    home = tmp_path / "home"
    proc = zoo_cli.run(
        *NB201, "search=evolution", "search.budget=30", run_dir=tmp_path / "run", env={"ZOO_HOME": str(home)}, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cached = sorted(p.name for p in (home / "hub" / "nb201").glob("*/*.xz"))
    assert cached == ["mini-bench-arch-cell-accs.csv.xz", "nats_bench.csv.xz", "nb201_latency_ms_help.csv.xz"]
    out = proc.stdout
    assert "test_acc_200ep" in out and "val_acc_12ep" in out and "best reward" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 85 < metrics["test_acc_200ep"] <= 94.38 and metrics["val_acc_12ep"] == metrics["search_reward"]
    assert metrics["search_evaluations"] == 30 and metrics["genotype"]["arch"] in out
    # the reported cell is one the search logged with the best reward, and its 200-epoch accuracy is the table's
    from omegaconf import OmegaConf

    from zoo.estimate.nb201 import NB201Estimator
    from zoo.space.genotype import genotype_from_json

    log = [json.loads(l) for l in (tmp_path / "run" / "search_log.jsonl").read_text().splitlines()]
    top = max(r["result"]["reward"] for r in log)
    assert metrics["search_reward"] == top and metrics["genotype"] in [r["genotype"] for r in log if r["result"]["reward"] == top]
    est = NB201Estimator(OmegaConf.create({}))  # the same tables, through the test ZOO_HOME
    assert metrics["test_acc_200ep"] == est.test_accuracy_200ep(genotype_from_json(metrics["genotype"]))
    for f in ("genotype.json", "genotype.png", "search_log.jsonl", "strategy_state.json", "search_curve.png"):
        assert (tmp_path / "run" / f).exists(), f


def test_cli_multi_objective_writes_a_pareto_front(tmp_path: Path, zoo_cli: ZooCli) -> None:
    d = tmp_path / "mo"
    proc = zoo_cli.run(*NB201, "search=random", "search.budget=40", "search.objectives=[accuracy,latency]", run_dir=d, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "non-dominated architectures" in proc.stdout
    front = json.loads((d / "pareto_front.json").read_text())
    assert front["objectives"] == ["accuracy", "latency"] and len(front["front"]) >= 2
    acc = np.array([m["accuracy"] for m in front["front"]])
    lat = np.array([m["latency"] for m in front["front"]])
    order = np.argsort(-acc)  # along the front, less accuracy must buy less latency
    assert (np.diff(lat[order]) < 0).all()
    assert all("test_acc_200ep" in m for m in front["front"])
    assert (d / "pareto_front.png").stat().st_size > 5000


def test_cli_bad_input_is_one_line_before_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    for args, words in [
        (("search=evolution", "search.population_size=500"), "search.population_size=500 is invalid"),
        (("search=bo_gp", "search.objectives=[accuracy,energy]"), "search.objectives=['accuracy', 'energy'] is invalid"),
        (("search=random", f"estimate.root={tmp_path}"), f"estimate.root='{tmp_path}' does not hold"),
    ]:
        proc = zoo_cli.run(*NB201, *args, run_dir=tmp_path / "never", timeout=300)
        assert words in one_error_line(proc), (args, proc.stderr)
        assert not (tmp_path / "never" / "search_log.jsonl").exists()
