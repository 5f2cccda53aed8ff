"""End-to-end segmentation through the CLI on generated shapes: a one-shot (DARTS) and a multi-trial
(evolution) search learn far better than trivial; search=fixed builds the published Auto-DeepLab; the
run's bundle fine-tunes on RGB data with other classes; the smp Unet baseline trains beside the searched
model on odd-sized tiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import ZooCli
from helpers.shapes import make_shapes
from helpers.tasks import build_task
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "data=masks",
    "data.tile_size=32",
    "space.steps=2",
    "space.layers=4",
    "task.model.init_channels=6",
    "task.model.aspp_channels=12",
    "task.model.decoder_channels=12",
    "task.estimate_model.init_channels=4",
    "task.estimate_model.aspp_channels=8",
    "task.estimate_model.decoder_channels=8",
    "task.supernet.init_channels=4",
    "task.supernet.aspp_channels=8",
    "task.supernet.decoder_channels=8",
    "trainer.batch_size=8",
    "progress=false",
    "threads=1",
]


def _trivial_mIoU(root: Path) -> float:
    """mIoU of predicting the most frequent class everywhere (its IoU = its pixel share; the others 0)."""
    masks = [np.asarray(Image.open(p)) for p in sorted((root / "masks").glob("*.png"))]
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=3)
    return float(counts.max() / counts.sum() / 3)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("seg") / "shapes", n=16, size=64, seed=0)


def test_darts_search_learns_shapes_and_fine_tunes_to_rgb(shapes: Path, tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    zoo_cli.run(
        "task=segmentation",
        "search=darts",
        "search.epochs=4",
        f"data.root={shapes}",
        *TINY,
        "trainer.epochs=50",
        "task.baseline.enabled=false",  # the baseline's own test is below: training it here would triple this test's time
        f"hydra.run.dir={run}",
        timeout=900,
        check=True,
    )
    m = json.loads((run / "metrics.json").read_text())
    trivial = _trivial_mIoU(shapes)
    assert trivial < 0.3
    assert m["test_mIoU"] > 0.85, m  # measured 0.957 (the trivial answer scores ~0.27)
    assert set(m["test_per_class_IoU"]) == {"background", "disc", "square"}
    assert len(list(run.glob("predictions_searched_*.png"))) >= 1
    log = [json.loads(l) for l in (run / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(len(e["genotype"]["path"]) == 4 for e in log)
    transition = np.array(log[-1]["path_transition"])
    assert transition.shape == (4, 4, 3) and np.abs(transition[transition > 0] - 1 / 3).max() > 1e-3  # the path weights moved
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "segmentation" and cfg["labels"] == ["background", "disc", "square"]

    # fine-tune the searched body on RGB shapes with two classes (squares unlabelled as background)
    rgb = make_shapes(tmp_path / "rgb", n=10, size=64, seed=5, rgb=True, classes=False)
    for p in (rgb / "masks").glob("*.png"):
        mask = np.asarray(Image.open(p)).copy()
        mask[mask == 2] = 0
        Image.fromarray(mask).save(p)
    ft = tmp_path / "ft"
    zoo_cli.run(
        "task=segmentation",
        "mode=finetune",
        f"checkpoint={run}",
        "data=masks",
        f"data.root={rgb}",
        "data.tile_size=32",
        "finetune.epochs=10",
        "finetune.freeze_epochs=2",
        "trainer.batch_size=8",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={ft}",
        timeout=900,
        check=True,
    )
    f = json.loads((ft / "metrics.json").read_text())
    assert f["head_replaced"] is True and f["test_mIoU"] > 0.6, f
    assert json.loads((ft / "config.json").read_text())["model"]["in_chans"] == 3


def test_evolution_search_and_fixed_autodeeplab(shapes: Path, tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "evo"
    zoo_cli.run(
        "task=segmentation",
        "search=evolution",
        "search.budget=4",
        "search.population_size=2",
        "search.sample_size=2",
        f"data.root={shapes}",
        *TINY,
        "trainer.estimate_epochs=2",
        "trainer.epochs=50",
        "task.baseline.enabled=false",
        f"hydra.run.dir={run}",
        timeout=900,
        check=True,
    )
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_mIoU"] > 0.8, m
    log = [json.loads(l) for l in (run / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and len({json.dumps(e["genotype"], sort_keys=True) for e in log}) == 4

    fixed = tmp_path / "fixed"
    out = zoo_cli.run(
        "task=segmentation",
        "search=fixed",
        "search.arch=autodeeplab",
        "space.steps=5",
        "space.layers=12",
        f"data.root={shapes}",
        *[o for o in TINY if not o.startswith("space.")],
        "trainer.epochs=1",
        "task.baseline.enabled=false",
        f"hydra.run.dir={fixed}",
        timeout=900,
        check=True,
    )
    g = json.loads((fixed / "genotype.json").read_text())
    assert g["path"] == [0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1] and len(g["cell"]["normal"]) == 10
    assert "test_mIoU" in out.stdout


def test_baseline_trains_beside_the_searched_model_on_odd_tiles(shapes: Path, one_thread: None) -> None:
    """The hand-made baseline, smp's Unet on a timm ResNet-18 scaled to the searched model's size, on 40-px tiles
    (not a multiple of 32: padded and cropped back), reported beside the searched model with its parameter
    count, the ratio of the two and the searched model's lead, and drawn."""
    task = build_task(
        [
            "task=segmentation",
            f"data.root={shapes}",
            *[o for o in TINY if o != "data.tile_size=32"],
            "data.tile_size=40",
            "trainer.epochs=3",
        ]
    )
    genotype = task.space.sample(np.random.default_rng(0))
    _, m = task.retrain(genotype)
    base = m["baseline"]
    assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"] and base["params_within_tolerance"]
    assert base["params_ratio"] == round(m["params_baseline"] / m["params"], 4) and base["params_target"] == m["params"]
    assert m["searched_minus_baseline"] == {
        "mIoU": m["test_mIoU"] - m["test_mIoU_baseline"],
        "pixel_accuracy": m["test_pixel_accuracy"] - m["test_pixel_accuracy_baseline"],
    }
    assert 0.0 <= m["test_mIoU_baseline"] <= 1.0 and set(base["per_class_IoU"]) == {"background", "disc", "square"}
    assert "Unet on a timm ResNet-18" in base["model"]
    assert set(task.predictions) == {"searched", "baseline"}
    assert all(p.shape == item.mask.shape for p, item in zip(task.predictions["baseline"], task.splits["test"]))


@pytest.mark.parametrize("target", [50_000, 800_000, 11_000_000])
def test_the_unet_family_reaches_each_size_within_ten_percent(shapes: Path, target: int) -> None:
    """``task.baseline.params=N``: the family member within 10% of N, from 50k to today's 11M scale."""
    task = build_task(["task=segmentation", f"data.root={shapes}", *TINY, f"task.baseline.params={target}"])
    model, about = task.create_baseline(searched_params=123)
    params = task.count_parameters(model)
    assert abs(params - target) <= 0.1 * target and about["params_target"] == target and about["params_within_tolerance"]
    assert model(torch.rand(1, 1, 40, 40)).shape == (1, 3, 40, 40)


def test_a_named_encoder_keeps_its_own_size(shapes: Path) -> None:
    """``task.baseline.encoder=resnet18``: the Unet of before (14.3M with 3 classes), whatever the searched size."""
    import segmentation_models_pytorch as smp

    task = build_task(["task=segmentation", f"data.root={shapes}", *TINY, "task.baseline.encoder=resnet18"])
    model, about = task.create_baseline(searched_params=123)
    unet = smp.Unet(encoder_name="resnet18", encoder_weights=None, in_channels=1, classes=3)
    assert task.count_parameters(model) == sum(p.numel() for p in unet.parameters()) and "resnet18" in about["model"]
