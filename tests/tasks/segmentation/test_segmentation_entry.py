"""The zoo's segmentation entries re-score to their recorded mIoU from the shipped weights, and serve as smp encoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.cli import ZooCli
from helpers.shapes import make_shapes
from helpers.tasks import build_task, private_cache, rescore_scenes_entry  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

import zoo
from zoo.hub.registry import load_entries

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nuclei_segmentation_entry_reproduces_its_miou() -> None:
    entry = load_entries()["nuclei-autodeeplab-darts"]
    assert entry.task == "segmentation" and entry.data["reproduce"] == (
        "python -m zoo task=segmentation search=darts data=nuclei trainer.epochs=40 trainer.estimate_epochs=6 trainer.search_items=null"
    )
    model = zoo.create_model("nuclei-autodeeplab-darts", pretrained=True).eval()
    task = build_task(["task=segmentation", "data=nuclei", "task.baseline.enabled=false"])
    m = task.test(model, "zoo")
    assert m["mIoU"] == pytest.approx(entry.metrics["test_mIoU"], abs=1e-3)
    assert m["per_class_IoU"]["nucleus"] > 0.8  # an untrained network finds no nucleus shape


def test_nuclei_entry_is_an_smp_encoder_with_its_weights() -> None:
    import segmentation_models_pytorch as smp

    from tasks.segmentation.integrations.smp import register_smp

    register_smp(["nuclei-autodeeplab-darts"])
    unet = smp.Unet(encoder_name="zoo-nuclei-autodeeplab-darts", encoder_weights=None, in_channels=1, classes=2)
    searched = zoo.create_model("nuclei-autodeeplab-darts", pretrained=True)
    ref = dict(searched.named_parameters())
    enc = dict(unet.encoder.body.named_parameters())
    assert enc and all(torch.equal(p, ref[n]) for n, p in enc.items())
    assert unet(torch.rand(1, 1, 64, 96)).shape == (1, 2, 64, 96)


@pytest.mark.slow
def test_scenes_segmentation_entry_reproduces_its_miou_and_beats_its_same_size_unet() -> None:
    entry, m = rescore_scenes_entry("scenes-seg-darts", "segmentation")
    assert m["mIoU"] == pytest.approx(entry.metrics["test_mIoU"], abs=1e-3)
    assert m["mIoU"] > entry.metrics["test_mIoU_baseline"] + 0.1  # the same-size smp Unet of its run


def test_scenes_segmentation_entry_fine_tunes_on_a_masks_folder(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """The entry's eleven-class head is replaced by a three-class one (RGB discs and squares, a masks folder) and trained."""
    run = tmp_path / "ft"
    out = zoo_cli.run(
        "task=segmentation",
        "mode=finetune",
        "checkpoint=scenes-seg-darts",
        "data=masks",
        f"data.root={make_shapes(tmp_path / 'shapes', n=16, size=64, seed=3, rgb=True)}",
        "data.tile_size=32",
        "trainer.batch_size=8",
        "finetune.epochs=10",
        "finetune.freeze_epochs=2",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={run}",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert m["head_replaced"] is True and cfg["labels"] == ["background", "disc", "square"]
    assert cfg["finetuned_from"]["checkpoint"] == "scenes-seg-darts" and m["test_mIoU"] > 0.6, m  # measured 0.98
