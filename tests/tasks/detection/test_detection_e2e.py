"""End-to-end detection on generated images (bright rectangles on noise) written as a COCO data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.cli import ZooCli
from helpers.data import make_rectangles
from helpers.tasks import detection_task, max_off_uniform

ROOT = Path(__file__).resolve().parents[3]


def test_tiny_detector_learns_rectangles(tmp_path: Path, one_thread: None) -> None:
    task, space = detection_task(
        make_rectangles(tmp_path, n=60),
        [
            "task.baseline.enabled=false",
            "trainer.epochs=30",
            "trainer.batch_size=8",
            "task.model.init_channels=8",
            "task.model.neck_channels=16",
            "task.draw_images=12",
        ],
    )
    assert len(task.splits["test"]) == 12 and len(task.splits["train"]) == 48
    from tasks.detection.space import DetectionGenotype

    model, metrics = task.retrain(DetectionGenotype(space.fixed_backbone, space.fixed_neck))
    assert metrics["test_mAP50"] > 0.6, metrics  # an untrained head scores ~0; measured 0.94
    assert 0.0 < metrics["test_mAP"] <= metrics["test_mAP50"]
    names = task.write_outputs(tmp_path)
    assert len(names) == 12 and all((tmp_path / n).stat().st_size > 1000 for n in names)
    task.cfg.draw_images = 3  # a thousand test scenes are not all drawn
    assert len(task.write_outputs(tmp_path / "few" if (tmp_path / "few").mkdir() is None else tmp_path)) == 3


@pytest.mark.parametrize("target,n_arch", [("both", 2 + 17), ("neck", 17), ("backbone", 2)])
def test_one_shot_problem_moves_the_searched_alphas(tmp_path: Path, one_thread: None, target: str, n_arch: int) -> None:
    task, space = detection_task(make_rectangles(tmp_path, n=12), ["trainer.batch_size=4", f"search.target={target}"])
    problem = task.one_shot_problem()
    net = problem.supernet
    arch = net.arch_parameters()
    assert len(arch) == n_arch  # alpha_normal, alpha_reduce (backbone); in1/in2/op per neck cell + level per intermediate cell
    assert len(list(net.weight_parameters())) + len(arch) == len(list(net.parameters()))
    before = [a.detach().clone() for a in arch]
    opt = torch.optim.Adam(arch, lr=0.1)
    batch = next(iter(problem.valid_loader))
    problem.loss(net, batch).backward(inputs=arch)
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(arch, before))
    logged = net.arch_weights()  # what the DARTS log records: named after the searched parts only
    assert ("backbone_alpha_normal" in logged) == (target != "neck") and ("neck_op" in logged) == (target != "backbone")
    if target != "backbone":
        assert len(logged["neck_op"]) == space.neck_space.num_cells and all(abs(sum(w) - 1) < 1e-5 for w in logged["neck_op"])
    g = net.genotype()
    assert space.decode(space.encode(g)) == g
    if target == "neck":
        assert g.backbone == space.fixed_backbone
    if target == "backbone":
        assert g.neck == space.fixed_neck
    assert 0.0 <= problem.score(net, problem.valid_loader) <= 1.0


def test_cli_darts_on_coco_data_writes_metrics_bundle_and_drawings(tmp_path: Path, zoo_cli: ZooCli) -> None:
    data = make_rectangles(tmp_path / "data", n=10, size=48)
    run = tmp_path / "run"
    args = [
        "task=detection",
        "search=darts",
        "data=coco",
        f"data.root={data}",
        "data.tile_size=48",
        "search.epochs=2",
        "search.warmup_epochs=0",
        "trainer.epochs=1",
        "trainer.batch_size=4",
        "task.baseline.enabled=true",
        "task.model.init_channels=8",
        "task.model.neck_channels=16",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={run}",
    ]
    out = zoo_cli.run(*args, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_mAP", "test_mAP50", "test_mAP_baseline", "test_mAP50_baseline"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["genotype"]["space"] == "detection"
    assert len(metrics["task_outputs"]) == 2 * 2 and all((run / n).is_file() for n in metrics["task_outputs"])
    from zoo.hub.bundle import load_bundle

    model, cfg = load_bundle(run)
    assert cfg["task"] == "detection" and cfg["labels"] == ["box"]
    assert model.predict(torch.rand(1, 3, 48, 48))[0]["boxes"].shape[1] == 4
    # the saved bundle is the model that was scored: re-scored on the same held-out images, the same mAP
    task, _ = detection_task(data, ["data.tile_size=48"])
    again = task.test(model.eval(), "reloaded")
    assert again["mAP50"] == pytest.approx(metrics["test_mAP50"], abs=1e-9) and again["mAP"] == pytest.approx(metrics["test_mAP"], abs=1e-9)
    assert len((run / "search_log.jsonl").read_text().splitlines()) == 2


def test_default_data_is_scenes_and_classification_data_is_refused(tmp_path: Path, zoo_cli: ZooCli) -> None:
    from zoo.__main__ import compose_config

    cfg = compose_config(["task=detection"])
    assert (cfg.data.name, cfg.space.name, cfg.space.target) == ("scenes", "detection", "both")
    out = zoo_cli.run("task=detection", "data=digits", run_dir=tmp_path, progress=None, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip() == "zoo: error: data=digits is not detection data; allowed with task=detection: scenes, trees, coco, voc"


def test_one_shot_search_without_its_supernet_is_one_line_before_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """The detection task builds the darts and pc_darts supernets: spos is refused before data loads."""
    out = zoo_cli.run("task=detection", "search=spos", run_dir=tmp_path / "spos", progress=None, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert (
        "search=spos trains a 'single_path' supernet, which task=detection does not build; allowed one-shot searches for it: darts, pc_darts"
        in out.stderr
    )
    assert not (tmp_path / "spos").exists()


def test_pc_darts_searches_backbone_and_neck(tmp_path: Path, one_thread: None) -> None:
    from zoo.search.base import STRATEGIES
    from zoo.space.pc_supernet import PCSuperNet

    task, space = detection_task(make_rectangles(tmp_path, n=12), ["trainer.batch_size=4", "search.target=both"])
    problem = task.one_shot_problem()
    strategy = STRATEGIES.get("pc_darts")(epochs=2, partial_channels=2, warmup_epochs=0, arch_lr=0.05, progress=False)
    records: list = []
    genotype = strategy.search(problem, log=records.append)
    net = problem.supernet  # the darts supernet stays untouched; pc_darts trained its own
    assert space.decode(space.encode(genotype)) == genotype and genotype.neck is not None
    assert [r["epoch"] for r in records] == [1, 2] and "backbone_alpha_normal" in records[-1] and "neck_op" in records[-1]
    for key in ("backbone_alpha_normal", "backbone_alpha_reduce", "neck_op", "neck_in1"):  # backbone and neck alphas both moved
        assert max_off_uniform(records[-1][key]) > 1e-4, (key, records[-1][key])
    pc = task.make_supernet("pc_darts", partial_channels=2)
    assert isinstance(pc.backbone, PCSuperNet) and len(pc.arch_parameters()) == len(net.arch_parameters()) + 2  # + beta normal/reduce


@pytest.mark.parametrize("target", [150_000, 12_000_000])
def test_the_resnet_fpn_family_reaches_each_size_within_ten_percent(tmp_path: Path, target: int) -> None:
    """``task.baseline.params=N``: the timm ResNet-18 (scaled widths) + FPN + FCOS head within 10% of N, from the
    searched models' sizes to the fixed 11M baseline's."""
    task, _ = detection_task(make_rectangles(tmp_path, n=6, size=48), ["data.tile_size=48", f"task.baseline.params={target}"])
    model, about = task.create_baseline(searched_params=123)
    params = task.count_parameters(model)
    assert abs(params - target) <= 0.1 * target and about["params_target"] == target and about["params_within_tolerance"]
    assert model.predict(torch.rand(1, 3, 48, 48))[0]["boxes"].shape[1] == 4
