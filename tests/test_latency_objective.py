"""Latency measured by timing the built model (``estimate=train``), and the accuracy/latency front it feeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from helpers.cli import ZooCli, one_error_line

from zoo.estimate.base import TrainEstimator
from zoo.estimate.latency import measure_latency_ms
from zoo.space.darts_space import DartsSpace
from zoo.space.genotype import Genotype
from zoo.task import TASKS

ROOT = Path(__file__).resolve().parent.parent


def _cell(op: str) -> list[tuple[str, int]]:
    return [(op, 0), (op, 1), (op, 0), (op, 1), (op, 0), (op, 1), (op, 0), (op, 1)]


def test_timing_orders_heavy_and_light_cells_on_digits() -> None:
    from zoo.__main__ import compose_config

    cfg = compose_config(["estimate.latency_repeats=15"])
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.trainer, DartsSpace(), seed=0, progress=False)
    task.setup()
    assert tuple(task.example_input().shape) == (1, 1, 8, 8)
    est = TrainEstimator(cfg.estimate, task)
    concat = [2, 3, 4, 5]
    heavy = Genotype(_cell("sep_conv_5x5"), concat, _cell("sep_conv_5x5"), concat)
    light = Genotype(_cell("skip_connect"), concat, _cell("max_pool_3x3"), concat)
    t_heavy, t_light = est.latency_ms(heavy), est.latency_ms(light)
    assert t_heavy > 1.5 * t_light > 0, (t_heavy, t_light)


def test_measure_latency_restores_mode_and_rejects_bad_repeats() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    model.train()
    assert measure_latency_ms(model, torch.zeros(1, 4), repeats=3) > 0 and model.training
    try:
        measure_latency_ms(model, torch.zeros(1, 4), repeats=0)
    except ValueError as e:
        assert "repeats=0" in str(e)
    else:
        raise AssertionError("repeats=0 accepted")


def test_cli_accuracy_latency_front_with_measured_latency(tmp_path: Path, zoo_cli: ZooCli) -> None:
    d = tmp_path / "mo"
    args = [
        "search=random",
        "search.budget=6",
        "search.objectives=[accuracy,latency]",
        "trainer.estimate_epochs=1",
        "trainer.epochs=1",
        "task.model.layers=2",
        "task.estimate_model.layers=2",
        "threads=1",
    ]
    proc = zoo_cli.run(*args, run_dir=d)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(l) for l in (d / "search_log.jsonl").read_text().splitlines()]
    lats = [r["result"]["latency_ms"] for r in log]
    assert len(lats) == 6 and all(l > 0 for l in lats) and len(set(lats)) > 1
    front = json.loads((d / "pareto_front.json").read_text())
    assert front["objectives"] == ["accuracy", "latency"] and front["front"]
    acc = np.array([m["accuracy"] for m in front["front"]])
    lat = np.array([m["latency"] for m in front["front"]])
    order = np.argsort(-acc)
    assert (np.diff(lat[order]) <= 0).all()  # along the front, more accuracy never costs less latency
    assert (d / "pareto_front.png").stat().st_size > 5000
    off = zoo_cli.run(*args, "estimate.latency=false", run_dir=tmp_path / "never")
    assert "estimate.latency=false" in one_error_line(off)
    bad = zoo_cli.run("search=random", "estimate.latency_repeats=0", run_dir=tmp_path / "never2")
    assert "estimate.latency_repeats=0 is invalid" in one_error_line(bad)
