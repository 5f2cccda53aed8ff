"""Fine-tuning a detection bundle (task=detection mode=finetune): a one-class detector trained on
rectangles is fine-tuned on two classes (red vs blue rectangles) written as COCO json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.cli import ZooCli
from helpers.data import make_colours, make_rectangles, tiny_bundle
from helpers.shared import once_per_run
from helpers.tasks import detection_task

import zoo
from zoo.hub.bundle import load_bundle, save_bundle

ROOT = Path(__file__).resolve().parents[3]


def _train_parent(root: Path) -> None:
    from tasks.detection.space import DetectionGenotype

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task, space = detection_task(
            make_rectangles(root / "rects", n=40),
            [
                "task.baseline.enabled=false",
                "trainer.epochs=30",
                "trainer.batch_size=8",
                "task.model.init_channels=8",
                "task.model.neck_channels=16",
            ],
        )
        g = DetectionGenotype(space.fixed_backbone, space.fixed_neck)
        model, metrics = task.retrain(g)
    finally:
        torch.set_num_threads(threads)
    save_bundle(
        root / "parent",
        model,
        {
            "task": "detection",
            "model": task.model_config(g),
            "labels": task.classes,
            "data": task.describe_data(),
            "metrics": metrics,
            "search": {"strategy": "fixed", "space": "detection"},
            "license": "Apache-2.0",
        },
    )
    make_colours(root / "colours")


@pytest.fixture(scope="session")
def parent(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-class detector bundle trained 30 short epochs on rectangles, and the two-class data (~3 s),
    made once per test run (the tests only read them)."""
    root = once_per_run(tmp_path_factory, "detection-finetune-parent", _train_parent)
    return {"bundle": root / "parent", "rects": root / "rects", "colours": root / "colours"}


def _finetune_cli(zoo_cli: ZooCli, bundle: Path, data: Path, run: Path, *overrides: str) -> dict:
    args = [
        "task=detection",
        "mode=finetune",
        f"checkpoint={bundle}",
        "data=coco",
        f"data.root={data}",
        "data.tile_size=64",
        "trainer.batch_size=8",
        "progress=false",
        "threads=1",
        f"hydra.run.dir={run}",
        *overrides,
    ]
    out = zoo_cli.run(*args, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((run / "metrics.json").read_text())


def _body(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in state if k.startswith(("backbone.", "neck."))]


def test_cli_finetune_on_two_classes(parent: dict[str, Path], tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "ft"
    metrics = _finetune_cli(
        zoo_cli, parent["bundle"], parent["colours"], run, "finetune.epochs=20", "finetune.freeze_epochs=5", "finetune.min_steps=0"
    )
    assert metrics["head_replaced"] is True and (metrics["epochs"], metrics["freeze_epochs"]) == (20, 5)

    model = zoo.from_pretrained(str(run))
    assert not model.training and model.predict(torch.rand(1, 3, 64, 64))[0]["labels"].max() <= 1
    cfg = load_bundle(run)[1]
    assert cfg["task"] == "detection" and cfg["labels"] == ["red", "blue"] and cfg["model"]["num_classes"] == 2
    assert model.head.cls_logits.out_channels == 2
    assert cfg["finetuned_from"]["checkpoint"] == str(parent["bundle"]) and cfg["finetuned_from"]["labels"] == ["box"]
    card = (run / "README.md").read_text()
    assert f"fine-tuned from the zoo checkpoint `{parent['bundle']}`" in card and "task=detection mode=finetune" in card
    # 8 test images, of which task.draw_images (4) are drawn
    assert metrics["drawn_predictions"] == 4 and len(list(run.glob("predictions_finetuned_*.png"))) == 4

    # the body came from the parent (not a fresh init) and then trained in the unfrozen epochs
    torch.manual_seed(0)
    fresh = zoo.create_model(**cfg["model"]).state_dict()
    parent_state = load_bundle(parent["bundle"])[0].state_dict()
    child = model.state_dict()
    weights = [k for k in _body(child) if k.endswith(".weight") and child[k].dim() == 4]
    assert weights
    far_from_fresh = [k for k in weights if (child[k] - fresh[k]).norm() > (child[k] - parent_state[k]).norm()]
    assert len(far_from_fresh) == len(weights), sorted(set(weights) - set(far_from_fresh))[:5]
    assert sum(not torch.equal(child[k], parent_state[k]) for k in weights) > 0.9 * len(weights)

    # an untrained class layer on the parent's body scores far lower on the same test images
    task, _ = detection_task(parent["colours"], [])
    untrained = zoo.create_model(**cfg["model"])
    untrained.load_state_dict({k: v for k, v in parent_state.items() if not k.startswith("head.cls_logits.")}, strict=False)
    base = task.test(untrained, "untrained")["mAP50"]
    assert metrics["test_mAP50"] > 0.6 and metrics["test_mAP50"] > base + 0.4, (metrics, base)  # measured 0.91 vs 0.01
    assert 0.0 < metrics["test_mAP"] <= metrics["test_mAP50"]


def test_frozen_body_keeps_parent_weights_and_statistics(parent: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.__main__ import compose_config
    from zoo.finetune import run_finetune

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    cfg = compose_config(
        [
            "task=detection",
            "mode=finetune",
            f"checkpoint={parent['bundle']}",
            "data=coco",
            f"data.root={parent['colours']}",
            "data.tile_size=64",
            "trainer.batch_size=8",
            "finetune.epochs=2",
            "finetune.freeze_epochs=2",
            "finetune.min_steps=0",
            "progress=false",
        ]
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = run_finetune(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)
    assert metrics["head_replaced"] is True and metrics["freeze_epochs"] == 2
    before = load_bundle(parent["bundle"])[0].state_dict()
    after = load_bundle(run_dir)[0].state_dict()
    body = _body(before)
    assert any("running_mean" in k for k in body)
    changed = [k for k in body + ["mean", "std"] if not torch.equal(before[k], after[k])]
    assert body and not changed, changed  # weights and batch-norm running statistics
    assert after["head.cls_logits.weight"].shape[0] == 2 and before["head.cls_logits.weight"].shape[0] == 1
    towers = [k for k in before if k.startswith(("head.cls_tower.", "head.box_tower.", "head.box_pred.", "head.centerness."))]
    assert towers and all(not torch.equal(before[k], after[k]) for k in towers if k.endswith(".weight"))


def test_same_classes_keep_the_head_and_score_it_first(parent: dict[str, Path], tmp_path: Path, zoo_cli: ZooCli) -> None:
    metrics = _finetune_cli(
        zoo_cli, parent["bundle"], parent["rects"], tmp_path / "ft", "finetune.epochs=1", "finetune.freeze_epochs=0", "finetune.min_steps=0"
    )
    assert metrics["head_replaced"] is False
    parent_metrics = json.loads((parent["bundle"] / "config.json").read_text())["metrics"]
    # same data, same held-out split, the parent's weights untouched: the parent's own test score
    assert metrics["test_mAP50_before"] == pytest.approx(parent_metrics["test_mAP50"], abs=1e-6) and metrics["test_mAP50_before"] > 0.3


@pytest.mark.parametrize(
    "kind,overrides,message",
    [
        (
            "classification",
            ["task=detection", "data=coco", "data.root=/nonexistent"],
            "is a classification checkpoint but task=detection; pass task=classification",
        ),
        ("detection", ["data=folder"], "is a detection checkpoint but task=classification; pass task=detection"),
        (
            "detection",
            ["task=detection", "data=digits"],
            "data=digits is not detection data; allowed with task=detection: scenes, trees, coco, voc",
        ),
    ],
)
def test_bad_input_is_one_line(
    parent: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, overrides: list[str], message: str
) -> None:
    from zoo.__main__ import precheck

    bundle = parent["bundle"] if kind == "detection" else tiny_bundle(tmp_path / "cls")
    with pytest.raises(SystemExit) as exit_:
        precheck(["mode=finetune", f"checkpoint={bundle}", *overrides])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
