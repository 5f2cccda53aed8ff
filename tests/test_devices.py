"""The ``device`` option and ``trainer.amp``: refused in one line before work when this machine cannot
honour them, resolved where it can; DataLoader workers draw reproducible, distinct augmentations.

The refusals of CUDA devices are checked on machines without CUDA (skipped where CUDA exists;
``bench/gpu_smoke.py`` covers those machines); ``device=cuda:99`` and malformed names are refused everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import ZooCli, one_error_line
from helpers.tiers import Processes
from torch import nn
from torch.utils.data import DataLoader, Dataset

from zoo.__main__ import compose_config
from zoo.config_values import ConfigError
from zoo.device import loader_options, resolve_device
from zoo.estimate.problem import OneShotProblem
from zoo.fit import fit, sgd
from zoo.pipeline import build, build_checks
from zoo.rundir import config_digest, write_run_config

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = not torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
NO_CUDA_LINE = "device={} is invalid: this machine has no CUDA device (torch.cuda.is_available() is False); allowed: auto, cpu"
AMP_ON_CPU = "trainer.amp=true is invalid on device=cpu (mixed precision is bf16 autocast on CUDA); allowed: false, or device=cuda"


def test_auto_and_cpu_resolve() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cpu" if NO_CUDA else "cuda")


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", "mps", "", 0, None])
def test_malformed_devices_are_refused_naming_the_value(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_device(value)
    allowed = "auto, cpu" if NO_CUDA else "auto, cpu, cuda, cuda:0"
    assert str(err.value).startswith(f"device={value} is invalid; allowed: {allowed}")


def test_a_cuda_index_beyond_the_machine_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda:99")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("device=cuda:99 is invalid: this machine has ") and "; allowed: auto, cpu" in msg


@needs_no_cuda
@pytest.mark.parametrize("value", ["cuda", "cuda:0"])
def test_cuda_without_cuda_fails_in_build(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(compose_config([f"device={value}"]), None, setup=False)
    assert str(err.value) == NO_CUDA_LINE.format(value)


@needs_no_cuda
def test_cuda_without_cuda_fails_through_the_cli_before_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    for value in ("cuda", "cuda:0"):
        run = tmp_path / value.replace(":", "_")
        assert one_error_line(zoo_cli.run(f"device={value}", run_dir=run)) == "zoo: error: " + NO_CUDA_LINE.format(value)
        assert not run.exists()


@needs_no_cuda
def test_amp_on_the_cpu_fails_in_one_line() -> None:
    for task in ("classification", "detection", "segmentation"):
        with pytest.raises(ConfigError) as err:
            build_checks(compose_config([f"task={task}", "trainer.amp=true"]))
        assert str(err.value) == AMP_ON_CPU


@needs_no_cuda
def test_amp_on_the_cpu_fails_through_the_cli_before_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    assert one_error_line(zoo_cli.run("trainer.amp=true", "search=random", run_dir=run)) == "zoo: error: " + AMP_ON_CPU
    assert not run.exists()


def test_amp_is_refused_for_rl_on_any_device() -> None:
    with pytest.raises(ConfigError) as err:
        build_checks(compose_config(["task=rl", "trainer.amp=true"]))
    assert str(err.value).startswith("trainer.amp=true is invalid with task=rl (stable-baselines3's PPO trains")
    assert str(err.value).endswith("; allowed: false")


def test_play_and_finetune_check_the_device_first() -> None:
    for mode in ("play", "finetune"):
        with pytest.raises(ConfigError, match=r"^device=tpu is invalid; allowed: auto, cpu"):
            build_checks(compose_config([f"mode={mode}", "device=tpu"]))


@needs_no_cuda
def test_training_under_amp_off_cuda_is_refused() -> None:
    """The one loop and the one-shot problem refuse autocast on the CPU themselves, whoever calls them."""
    model = nn.Linear(2, 2)
    batches = [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))]

    def loss(m: nn.Module, b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(m(b[0]), b[1])

    with pytest.raises(ConfigError, match=r"^trainer.amp=true is invalid on device=cpu"):
        fit(model, batches, 1, loss, sgd(0.1), lambda o, e, s: _NoSchedule(), progress=False, amp=True)
    with pytest.raises(ConfigError, match=r"^trainer.amp=true is invalid on device=cpu"):
        OneShotProblem(model, batches, batches, loss, lambda m, b: 0.0, amp=True)
    assert OneShotProblem(model, batches, batches, loss, lambda m, b: 0.0).device == torch.device("cpu")  # where the supernet is


class _NoSchedule:
    state = None

    def start_epoch(self, epoch: int) -> None:
        pass

    def after_step(self) -> None:
        pass


def test_the_device_does_not_decide_a_runs_identity(tmp_path: Path) -> None:
    """A run may resume on another device: the config digest and the recorded run config leave it out."""
    cpu, auto = compose_config(["device=cpu"]), compose_config(["device=auto"])
    assert config_digest(cpu) == config_digest(auto)
    write_run_config(cpu, tmp_path)
    assert not any(k.startswith("device") for k in json.loads((tmp_path / "run_config.json").read_text()))


class _Draws(Dataset):
    """Each item is one draw of the dataset's augmentation generator (``rng``, as the image tasks' tile sets)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> float:
        return float(self.rng.random())


def _epochs(num_workers: int, seed: int = 0) -> list[list[float]]:
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(_Draws(), batch_size=2, shuffle=True, generator=g, **loader_options(torch.device("cpu"), num_workers))
    return [[float(v) for batch in loader for v in batch] for _ in range(2)]


def test_loader_workers_draw_distinct_reproducible_augmentations(multiprocess: Processes) -> None:
    first, again = _epochs(2), _epochs(2)
    assert first == again  # the loader's generator decides every worker's draws
    for epoch in first:
        assert len(set(epoch)) == len(epoch)  # without reseeding, both workers would replay one generator's draws
    assert first[0] != first[1]  # each epoch reseeds the workers from the generator's next state
    assert loader_options(torch.device("cpu"), 0) == {"pin_memory": False, "num_workers": 0}  # in-process loading, unchanged


def test_a_tiny_run_on_device_auto(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    proc = zoo_cli.run(
        "device=auto",
        "search=random",
        "search.budget=1",
        "trainer.estimate_epochs=1",
        "trainer.epochs=1",
        "task.estimate_model.layers=2",
        "task.estimate_model.init_channels=4",
        "task.model.layers=2",
        "task.model.init_channels=4",
        "estimate.latency=false",
        "threads=1",
        run_dir=run,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["device"] == ("cpu" if NO_CUDA else "cuda")
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and (run / "model.safetensors").is_file()
