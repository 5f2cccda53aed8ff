"""The task contract: one suite that every registered task (``zoo.task.TASKS``) passes.

Each test runs once per task on the tiny real data and tiny models of the task's contract
fixture (``tests/tasks/<name>/contract_fixture.py``, see ``fixtures.py``), through the real entry
points: ``zoo.build.make_task``, ``zoo.create_model``, the bundle writer and loader, the ONNX
exporter, ``zoo.finetune.run_finetune`` and ``Task.retrain`` with epoch checkpoints. A new task
passes it by registering a fixture; a task without one fails ``test_every_task_has_a_contract_fixture``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fixtures import BadData, TaskFixture, load_fixtures, merge_overrides
from torch import nn

import zoo
from zoo.__main__ import compose_config
from zoo.build import make_task
from zoo.config_values import ConfigError
from zoo.hub.bundle import load_bundle, save_bundle
from zoo.runners.checkpoint import EpochCheckpoint, TrainingCheckpoints
from zoo.task import TASKS, DataError, Task

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURES = load_fixtures()
TASK_NAMES = TASKS.names()
per_task = pytest.mark.parametrize("name", TASK_NAMES)


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def fixture_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TaskFixture]:
    """The task's contract fixture, its tiny data written once per module."""
    made: dict[str, TaskFixture] = {}

    def get(name: str) -> TaskFixture:
        if name not in made:
            if name not in FIXTURES:
                pytest.fail(
                    f"task {name!r} has no contract fixture: add tests/tasks/{name}/contract_fixture.py with @contract_fixture({name!r})"
                )
            made[name] = FIXTURES[name](tmp_path_factory.mktemp(f"{name}-data"))
        return made[name]

    return get


def compose(fixture: TaskFixture, extra: list[str] | tuple[str, ...] = ()) -> Any:
    return compose_config(merge_overrides(fixture.overrides, list(extra)))


def set_up(fixture: TaskFixture, extra: list[str] | tuple[str, ...] = ()) -> Task:
    """A new task on the fixture's data, set up (as a new process would build it)."""
    task = make_task(compose(fixture, extra))
    task.setup()
    return task


def sampled_genotype(task: Task, seed: int = 0) -> Any:
    """The genotype of a seeded random decision vector of the task's space."""
    rng = np.random.default_rng(seed)
    return task.space.decode([int(rng.integers(c)) for c in task.space.cardinalities()])


def leaves(out: Any, path: str = "output") -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a model's output, named by where it sits (tensors, tuples, lists, dicts, dataclasses)."""
    if isinstance(out, torch.Tensor):
        return [(path, out)]
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [leaf for f in dataclasses.fields(out) for leaf in leaves(getattr(out, f.name), f"{path}.{f.name}")]
    if isinstance(out, dict):
        return [leaf for k in sorted(out) for leaf in leaves(out[k], f"{path}[{k!r}]")]
    if isinstance(out, (tuple, list)):
        return [leaf for i, v in enumerate(out) for leaf in leaves(v, f"{path}[{i}]")]
    raise TypeError(f"{path} is a {type(out).__name__}, not tensors (or tuples, lists, dicts, dataclasses of them)")


def inputs(task: Task) -> list[torch.Tensor]:
    """``task.example_input()`` and a random batch of two like it (``task.random_input``)."""
    g = torch.Generator().manual_seed(1)
    return [task.example_input(), task.random_input(2, g)]


@torch.no_grad()
def outputs(model: nn.Module, xs: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    model.eval()
    return [(f"input{i}:{name}", t) for i, x in enumerate(xs) for name, t in leaves(model(x))]


def assert_same_outputs(a: list[tuple[str, torch.Tensor]], b: list[tuple[str, torch.Tensor]]) -> None:
    assert a, "the model returned no tensors"
    assert [n for n, _ in a] == [n for n, _ in b], "the two models' outputs have another structure"
    for (name, x), (_, y) in zip(a, b):
        assert x.shape == y.shape, f"{name}: shape {tuple(x.shape)} vs {tuple(y.shape)}"
        assert torch.equal(x, y), f"{name}: outputs differ by up to {float((x.float() - y.float()).abs().max()):.3g}"


@torch.no_grad()
def non_trivial(model: nn.Module, task: Task, seed: int = 0) -> nn.Module:
    """Moves every parameter and the normalisation statistics off their initial values, so that a
    tensor that is not saved or loaded shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    model(torch.cat([task.example_input(), task.random_input(1, g)]))  # batch statistics of two inputs
    for p in model.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def state_shapes(model: nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def write_bundle(task: Task, model: nn.Module, genotype: Any, directory: Path) -> Path:
    """The bundle a search run writes for ``model`` (zoo.pipeline.finish's fields)."""
    return save_bundle(
        directory,
        model,
        {
            "task": task.name,
            "model": task.model_config(genotype, final=True),
            "labels": getattr(task, "classes", None),
            "data": task.describe_data(),
            "metrics": {"score": 0.5},
            "search": {"strategy": "fixed", "space": task.space.name},
            "license": "Apache-2.0",
        },
    )


def without_timings(m: Any) -> Any:
    """Metrics with wall-clock values dropped and NaN made comparable."""
    if isinstance(m, dict):
        return {k: without_timings(v) for k, v in m.items() if "seconds" not in k}
    if isinstance(m, (list, tuple)):
        return [without_timings(v) for v in m]
    if isinstance(m, float) and math.isnan(m):
        return "nan"
    return m


class Interrupted(Exception):
    """The injected crash of an interrupted training."""


class RecordingCheckpoints(TrainingCheckpoints):
    """Real epoch checkpoints that record each save; with ``interrupt_after=n`` the training
    crashes right after the n-th save has been written (fault injection, as a killed run)."""

    def __init__(self, directory: Path, resume: bool, interrupt_after: int | None = None) -> None:
        super().__init__(directory, resume)
        self.saved: list[tuple[str, dict[str, Any]]] = []
        self.interrupt_after = interrupt_after

    def for_model(self, name: str) -> EpochCheckpoint:
        fresh = name not in self.made
        ckpt = super().for_model(name)
        if fresh:
            save = ckpt.save

            def save_then_maybe_crash(kind: str, objects: dict[str, Any], meta: dict[str, Any], *args: Any, **kwargs: Any) -> None:
                save(kind, objects, meta, *args, **kwargs)
                self.saved.append((name, dict(meta)))
                if self.interrupt_after is not None and len(self.saved) >= self.interrupt_after:
                    raise Interrupted(f"after save {len(self.saved)} ({name})")

            ckpt.save = save_then_maybe_crash  # type: ignore[method-assign]
        return ckpt


# ---------------------------------------------------------------- the contract
def test_every_task_has_a_contract_fixture() -> None:
    assert TASK_NAMES, "no task is registered"
    missing = [n for n in TASK_NAMES if n not in FIXTURES]
    assert not missing, (
        f"task(s) {', '.join(missing)} have no contract fixture: add tests/tasks/<name>/contract_fixture.py "
        "registering one with @contract_fixture('<name>') (see tests/contract/fixtures.py)"
    )
    unknown = [n for n in FIXTURES if n not in TASK_NAMES]
    assert not unknown, f"contract fixture(s) for unregistered task(s): {', '.join(unknown)}; registered: {', '.join(TASK_NAMES)}"


@per_task
def test_fixture_composes_to_the_task_with_tiny_training(name: str, fixture_of: Callable[[str], TaskFixture]) -> None:
    fixture = fixture_of(name)
    cfg = compose(fixture)
    assert cfg.task.name == name
    assert int(cfg.trainer.epochs) <= 2, "the contract suite trains for at most two epochs"
    assert fixture.bad_data, f"task {name!r}'s contract fixture lists no bad-data cases"
    task = set_up(fixture)
    assert isinstance(task, TASKS.get(name)) and task.name == name
    x = task.example_input()
    assert isinstance(x, torch.Tensor) and x.shape[0] == 1


@per_task
@pytest.mark.parametrize("final", [True, False], ids=["final", "estimate"])
def test_genotype_model_config_create_model_round_trip(name: str, final: bool, fixture_of: Callable[[str], TaskFixture]) -> None:
    task = set_up(fixture_of(name))
    g = sampled_genotype(task, seed=3)
    assert task.space.decode(task.space.encode(g)) == g
    built = non_trivial(task.build_model(g, final=final), task)

    config = task.model_config(g, final=final)
    stored = json.loads(json.dumps(config))  # what config.json keeps
    assert stored == config, "model_config() is not plain JSON"
    rebuilt = zoo.create_model(task=task.name, **stored)
    assert state_shapes(rebuilt) == state_shapes(built)
    rebuilt.load_state_dict(built.state_dict(), strict=True)
    assert_same_outputs(outputs(built, inputs(task)), outputs(rebuilt, inputs(task)))


@per_task
def test_bundle_save_load_gives_identical_outputs(name: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path) -> None:
    task = set_up(fixture_of(name))
    g = sampled_genotype(task)
    model = non_trivial(task.build_model(g), task)
    write_bundle(task, model, g, tmp_path / "bundle")

    on_disk = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert on_disk["task"] == name
    loaded, cfg = load_bundle(tmp_path / "bundle")
    assert cfg["model"] == json.loads(json.dumps(task.model_config(g)))
    assert not loaded.training
    assert_same_outputs(outputs(model, inputs(task)), outputs(loaded, inputs(task)))


@pytest.mark.requires("onnx", "onnxruntime")
@per_task
def test_onnx_export_matches_pytorch(name: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path) -> None:
    from zoo.hub.export import export_model
    from zoo.hub.facts import hub_facts

    task = set_up(fixture_of(name))
    g = sampled_genotype(task)
    write_bundle(task, non_trivial(task.build_model(g), task), g, tmp_path / "bundle")
    model, cfg = load_bundle(tmp_path / "bundle")
    try:
        shape = hub_facts(name).input_shape(cfg)
    except NotImplementedError as e:
        pytest.skip(f"task {name!r} does not export: {e}")
    assert tuple(shape) == tuple(task.example_input().shape[1:]), "the bundle's recorded input shape is not what the task feeds its models"
    out = tmp_path / "model.onnx"
    report = export_model(model, cfg, out, fmt="onnx")  # raises HubError when onnxruntime's outputs differ from PyTorch's
    assert report["checked"] == "ok", report
    assert out.stat().st_size > 0 and report["input_shape"][1:] == list(shape)
    assert math.isfinite(report["max_abs_diff"])


@per_task
def test_finetune_writes_a_loadable_bundle_with_changed_weights(
    name: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.finetune import run_finetune
    from zoo.hub.download import sha256_file

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_REGISTRY", raising=False)
    fixture = fixture_of(name)
    task = set_up(fixture)
    g = sampled_genotype(task)
    parent_dir = write_bundle(task, task.build_model(g), g, tmp_path / "parent")

    cfg = compose(
        fixture,
        [
            "mode=finetune",
            f"checkpoint={parent_dir}",
            "finetune.epochs=2",
            "finetune.freeze_epochs=1",
            "finetune.min_steps=0",
            *fixture.finetune_overrides,
        ],
    )
    run_dir = tmp_path / "finetuned"
    run_dir.mkdir()
    metrics = run_finetune(cfg, run_dir)
    assert isinstance(metrics["score"], float) and math.isfinite(metrics["score"]), metrics
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))

    model, bundle = load_bundle(run_dir)
    assert bundle["task"] == name and math.isfinite(bundle["metrics"]["score"])
    assert bundle["finetuned_from"]["weights_sha256"] == sha256_file(parent_dir / "model.safetensors")
    parent = load_bundle(parent_dir)[0].state_dict()
    child = model.state_dict()
    assert child.keys() == parent.keys()  # same data, same labels: nothing replaced
    assert all(torch.isfinite(v).all() for v in child.values() if v.is_floating_point())
    changed = [k for k in child if not torch.equal(child[k], parent[k])]
    assert changed, "fine-tuning left every tensor of the parent unchanged"


@per_task
def test_retrain_resumed_after_an_interruption_is_exact(name: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path) -> None:
    fixture = fixture_of(name)
    two_epochs = ["trainer.epochs=2"]
    g = sampled_genotype(set_up(fixture, two_epochs))

    whole_ckpt = RecordingCheckpoints(tmp_path / "whole", resume=False)
    whole, whole_metrics = set_up(fixture, two_epochs).retrain(g, whole_ckpt)
    assert len(whole_ckpt.saved) >= 2, f"retrain saved {len(whole_ckpt.saved)} epoch checkpoint(s) in 2 epochs; it must save one per epoch"

    killed = RecordingCheckpoints(tmp_path / "killed", resume=False, interrupt_after=1)
    with pytest.raises(Interrupted):
        set_up(fixture, two_epochs).retrain(g, killed)
    first = killed.saved[0][0]
    assert all(p.is_file() for p in killed.made[first].files)
    state = killed.made[first].files[0]
    record = json.loads(state.read_text())
    assert record["seconds"] > 0, "an epoch checkpoint must record the seconds its training had taken"
    state.write_text(json.dumps({**record, "seconds": 1000.0}))  # as if the first part had run for 1000 s

    resumed_ckpt = RecordingCheckpoints(tmp_path / "killed", resume=True)
    resumed, resumed_metrics = set_up(fixture, two_epochs).retrain(g, resumed_ckpt)  # a new task, as a new process builds it
    assert len(resumed_ckpt.saved) == len(whole_ckpt.saved) - 1, "the resumed training did not continue after the saved epoch"
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensor(s) differ from the uninterrupted training, the first {differ[0]!r}"
    assert without_timings(resumed_metrics) == without_timings(whole_metrics)
    assert math.isfinite(whole_metrics["score"])
    if "train_seconds" in resumed_metrics:
        assert resumed_metrics["train_seconds"] >= 1000, (
            f"the resumed training reports {resumed_metrics['train_seconds']} s: the 1000 s before the interruption are missing"
        )


@per_task
def test_bad_data_fails_in_one_line(name: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path, subtests: Any) -> None:
    fixture = fixture_of(name)
    assert fixture.bad_data, f"task {name!r}'s contract fixture lists no bad-data cases"
    for k, case in enumerate(fixture.bad_data):
        with subtests.test(msg=case.id):
            root = tmp_path / f"case{k}"
            root.mkdir()
            message = _error_of(fixture, case, root)
            expect = case.expect.format(root=root)
            assert "\n" not in message.strip(), f"{case.id}: the error has more than one line: {message!r}"
            assert message.startswith(expect), f"{case.id}: expected the error to start with\n  {expect!r}\ngot\n  {message!r}"


def _error_of(fixture: TaskFixture, case: BadData, root: Path) -> str:
    extra = [o.format(root=root) for o in case.overrides] + (case.write(root) if case.write else [])
    cfg = compose(fixture, extra)
    if case.error is ConfigError:
        with pytest.raises(ConfigError) as e:
            make_task(cfg)
    else:
        task = make_task(cfg)
        with pytest.raises(DataError) as e:
            task.setup()
    return str(e.value)


@per_task
@pytest.mark.parametrize("search", ["random", "darts"], ids=["multi_trial", "one_shot"])
def test_constrained_search_ends_with_a_model_within_the_constraint(
    name: str, search: str, fixture_of: Callable[[str], TaskFixture], tmp_path: Path
) -> None:
    """``constraints.params`` at five times the configured final network's size: the search (multi-trial or one-shot)
    ends with the network's width fitted up to the constraint and below it, and the shipped bundle is that network
    (shrinking to a tighter constraint: tests/test_constraints.py)."""
    from zoo.pipeline import build, finish
    from zoo.pipeline import search as run_search

    fixture = fixture_of(name)
    task = set_up(fixture)
    limit = 5 * task.count_parameters(task.build_model(sampled_genotype(task)))  # room for one step up of any width key
    kind = ["search.epochs=1", "search.warmup_epochs=0"] if search == "darts" else ["search.budget=2"]
    baseline_off = ["task.baseline.enabled=false"] if "baseline" in compose(fixture).task else []
    cfg = compose(fixture, [f"search={search}", *kind, f"constraints.params={limit}", *baseline_off, "trainer.epochs=1", "progress=false"])
    run = build(cfg, tmp_path / "run")
    metrics = finish(run, run_search(run))
    assert metrics["constraints"]["params"] == {"limit": limit, "final": metrics["params"], "met": True}
    assert metrics["params"] <= limit
    first = next(iter(task.width_keys))
    assert metrics["final_widths"][first] > int(task.size_config()[first])  # the width grew to use the budget
    loaded, config = load_bundle(tmp_path / "run")
    assert task.count_parameters(loaded) == metrics["params"] and config["model"][first] == metrics["final_widths"][first]
