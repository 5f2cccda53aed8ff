"""The zoo's segmentation entry re-scores to its recorded mIoU from the shipped weights, and serves as an smp encoder."""

from __future__ import annotations

import pytest
import torch
from helpers.tasks import build_task, private_cache  # noqa: F401  (private_cache: autouse, a private ZOO_HOME)

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
