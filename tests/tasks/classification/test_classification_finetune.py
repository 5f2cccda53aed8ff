"""Fine-tuning zoo checkpoints (mode=finetune): a served classification entry on an
ImageFolder with another class count, and a frozen body that really stays frozen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import ZooCli
from helpers.data import digit_folder, tiny_bundle
from helpers.hub_server import HubServer

from zoo.hub.bundle import load_bundle
from zoo.hub.publish import push
from zoo.hub.registry import load_entries


def test_finetune_served_entry_on_image_folder_with_other_classes(tmp_path: Path, zoo_cli: ZooCli) -> None:
    release = next(e for e in load_entries().values() if e.has_weights and e.task == "classification" and e.dataset == "digits")
    served = tmp_path / "served"
    release_dir = Path(release.files[0].urls[0]).parent
    push(str(release_dir), str(served), name="digits-served")
    folder = digit_folder(tmp_path / "images")
    run_dir = tmp_path / "ft"
    with HubServer(served) as server:
        args = [
            "mode=finetune",
            "checkpoint=digits-served",
            "data=folder",
            f"data.root={folder}",
            f"hub.registry={server.url}registry.json",
            "finetune.epochs=3",
            "finetune.freeze_epochs=1",
            "finetune.min_steps=0",
            "progress=false",
            "threads=1",
            f"hydra.run.dir={run_dir}",
        ]
        out = zoo_cli.run(*args, env={"ZOO_HOME": str(tmp_path / "home"), "ZOO_REGISTRY": None}, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert server.requests["digits-served/model.safetensors"] == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["head_replaced"] is True and metrics["chance_accuracy"] == 0.25
    assert metrics["test_accuracy"] > 0.6, metrics  # well above chance after three short epochs
    model, cfg = load_bundle(run_dir)
    assert cfg["labels"] == ["four", "one", "seven", "zero"] and cfg["model"]["num_classes"] == 4
    assert cfg["finetuned_from"]["checkpoint"] == "digits-served"
    assert cfg["preprocessing"]["input_size"] == [1, 8, 8]  # images were read at the checkpoint's size and channels
    assert "fine-tuned from the zoo checkpoint `digits-served`" in (run_dir / "README.md").read_text()
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 4)
    parent, _ = load_bundle(release_dir)
    body = "net.stem0.0.weight"
    assert not torch.equal(model.state_dict()[body], parent.state_dict()[body])  # the body was fine-tuned after the freeze


def test_frozen_body_keeps_weights_and_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.__main__ import compose_config
    from zoo.finetune import run_finetune

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    parent_dir = tiny_bundle(tmp_path / "parent")
    folder = digit_folder(tmp_path / "images", per_class=8)
    cfg = compose_config(
        [
            "mode=finetune",
            f"checkpoint={parent_dir}",
            "data=folder",
            f"data.root={folder}",
            "finetune.epochs=1",
            "finetune.freeze_epochs=1",
            "finetune.min_steps=0",
            "progress=false",
        ]
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metrics = run_finetune(cfg, run_dir)
    assert metrics["head_replaced"] is True and metrics["freeze_epochs"] == 1
    parent = load_bundle(parent_dir)[0].state_dict()
    child = load_bundle(run_dir)[0].state_dict()
    body = [k for k in parent if "classifier" not in k]
    changed = [k for k in body if not torch.equal(parent[k], child[k])]
    assert body and not changed, changed  # weights and batch-norm running statistics
    assert child["net.classifier.weight"].shape == (4, parent["net.classifier.weight"].shape[1])


@pytest.mark.parametrize(
    "overrides,message",
    [
        ([], "mode=finetune needs checkpoint=NAME_OR_PATH"),
        (["checkpoint=darts_v2"], "checkpoint=darts_v2 is architecture-only"),
        (
            ["checkpoint=digits-darts", "finetune.freeze_epochs=9"],
            "finetune.freeze_epochs=9 is invalid; allowed: 0 ... finetune.epochs (6)",
        ),
        (["checkpoint=no/such/dir"], "checkpoint=no/such/dir does not exist"),
        (["checkpoint=digits-darts", "task=classification", "mode=train"], "mode=train is unknown; allowed: search, finetune, play"),
    ],
)
def test_finetune_bad_input_is_one_line(overrides: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.__main__ import precheck

    with pytest.raises(SystemExit) as exit_:
        precheck(["mode=finetune", *overrides])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err


def test_defaults_learn_a_small_folder_by_stretching_epochs_to_min_steps(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """150 noisy red/green/blue 32x32 images read at digits-darts' 1x8x8: six epochs are 12 steps
    and stayed at chance (0.33); finetune.min_steps stretches the epochs until the head learns."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in (("red", (220, 40, 40)), ("green", (40, 200, 60)), ("blue", (40, 60, 220))):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(50):
            pixels = (rng.normal(0, 40, (32, 32, 3)) + np.array(colour)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "img" / name / f"{i}.png")
    run_dir = tmp_path / "ft"
    args = [
        "mode=finetune",
        "checkpoint=digits-darts",
        "data=folder",
        f"data.root={tmp_path / 'img'}",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={run_dir}",
    ]
    out = zoo_cli.run(*args, env={"ZOO_HOME": str(tmp_path / "home")}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps_per_epoch = 2  # 120 training images, batch 64
    assert metrics["epochs"] % 6 == 0 and metrics["epochs"] * steps_per_epoch >= 300 and metrics["freeze_epochs"] == metrics["epochs"] // 3
    assert metrics["test_accuracy"] > 0.9, metrics  # chance is 0.33
