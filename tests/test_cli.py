"""The command line: one-line errors before work, --help, and real end-to-end runs on digits."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import ZooCli, one_error_line
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_groups_and_options(zoo_cli: ZooCli) -> None:
    proc = zoo_cli.run("--help", progress=None, timeout=120)
    assert proc.returncode == 0
    assert "search: " in proc.stdout and "darts" in proc.stdout and "random" in proc.stdout
    data_line = next(l for l in proc.stdout.splitlines() if l.startswith("data: "))
    assert "task: classification" in proc.stdout and {"digits", "fashion_mnist", "folder"} <= set(data_line[6:].split(", "))


def _folder(root: Path, classes: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _data_options_with(key: str) -> list[str]:
    """The data options (of the core's and every task's conf/data/) whose YAML has ``key``, sorted: what the CLI names."""
    from omegaconf import OmegaConf

    from zoo.__main__ import conf_roots

    return sorted({p.stem for d in conf_roots() for p in (Path(d) / "data").glob("*.yaml") if key in OmegaConf.load(p)})


def test_clear_one_line_errors(tmp_path: Path, zoo_cli: ZooCli) -> None:
    cases = [
        (["task=nope"], "task=nope is unknown; allowed task options: classification"),
        (
            ["data.root=/tmp"],
            f"data has no key 'root'; allowed: name, test_fraction (data.root belongs to data={', '.join(_data_options_with('root'))}: pick one with data=NAME)",
        ),
        (["search=nope"], "search=nope is unknown; allowed search options:"),
        (["space.primitives=[none,warp_conv]"], "space.primitives has unknown op 'warp_conv'; allowed:"),
        (["nonsense=1"], "unknown option 'nonsense'"),
        (["trainer.epochs=0"], "trainer.epochs=0 is invalid; allowed: an integer >= 1"),
        (["search.order=3"], "search.order=3 is invalid"),
        (["data=folder", f"data.root={tmp_path / 'missing'}"], "does not exist"),
        (["data=folder", f"data.root={(tmp_path / 'empty').mkdir() or tmp_path / 'empty'}"], "is empty"),
        (["data=folder", f"data.root={_folder(tmp_path / 'one', {'cats': 2})}"], "has one class ('cats')"),
    ]
    for args, message in cases:
        line = one_error_line(zoo_cli.run(*args, run_dir=tmp_path / "run"))
        assert message in line, (args, line)


def test_corrupted_genotype_json_is_one_line(tmp_path: Path, zoo_cli: ZooCli) -> None:
    bad = tmp_path / "genotype.json"
    bad.write_text('{"space": "darts", "normal": [["sep_conv_3x3", 0]')
    line = one_error_line(zoo_cli.run("search=fixed", f"search.arch={bad}", run_dir=tmp_path / "run"))
    assert f"genotype file {bad} is not valid JSON" in line
    bad.write_text(
        json.dumps(
            {
                "space": "darts",
                "normal": [["teleport", 0], ["skip_connect", 1]],
                "normal_concat": [2],
                "reduce": [["skip_connect", 0], ["skip_connect", 1]],
                "reduce_concat": [2],
            }
        )
    )
    line = one_error_line(zoo_cli.run("search=fixed", f"search.arch={bad}", run_dir=tmp_path / "run"))
    assert "unknown op 'teleport'" in line


def test_default_darts_run_on_digits_end_to_end(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    proc = zoo_cli.run(
        "search.epochs=2",
        "search.warmup_epochs=0",
        "task.supernet.layers=3",
        "task.supernet.init_channels=6",
        "trainer.epochs=4",
        "task.model.layers=3",
        "task.model.init_channels=12",
        run_dir=run,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "genotype.json",
        "search_log.jsonl",
        "model.safetensors",
        "config.json",
        "metrics.json",
        "search_curve.png",
        "genotype.png",
        ".hydra/config.yaml",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.6  # chance is 0.1
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(("oneshot_checkpoint", "retrain_")) or p.suffix == ".log"]
    assert not leftovers, leftovers  # a complete run keeps no checkpoints and no empty log files
    assert "test_accuracy" in proc.stdout
    log = [json.loads(l) for l in (run / "search_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    # the bundle rebuilds the model with no other file and reproduces the test accuracy's predictions
    import torch

    import zoo as zoo_pkg
    from tasks.classification.data import load_digits_data

    model = zoo_pkg.from_pretrained(str(run))
    data = load_digits_data()
    with torch.no_grad():
        pred = model(data.x[:200]).argmax(1)
    assert float((pred == data.y[:200]).float().mean()) > 0.6


def test_random_search_resumes_without_redoing_work(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    args = ["search=random", "trainer.estimate_epochs=1", "trainer.epochs=1", "task.model.layers=2", "task.estimate_model.layers=2"]
    args += ["task.model.init_channels=8", "task.estimate_model.init_channels=4"]  # narrow: the resume is checked, not the accuracy
    first = zoo_cli.run(*args, "search.budget=2", run_dir=run)
    assert first.returncode == 0, first.stderr[-3000:]
    before = (run / "search_log.jsonl").read_text().splitlines()
    again = zoo_cli.run(*args, "search.budget=2", run_dir=run)
    assert "resume=true" in one_error_line(again)  # never overwrite a finished search by accident
    t0 = time.time()
    resumed = zoo_cli.run(*args, "search.budget=4", "resume=true", run_dir=run)
    resumed_wall = time.time() - t0
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = (run / "search_log.jsonl").read_text().splitlines()
    assert after[:2] == before and len(after) == 4
    assert [json.loads(l)["trial"] for l in after] == [0, 1, 2, 3]
    # the resumed run's search time holds the first process's two candidates too (one worker: one after the other),
    # and no more than them beyond its own wall time
    first_two = sum(json.loads(l)["seconds"] for l in before)
    resumed_two = sum(json.loads(l)["seconds"] for l in after[2:])
    seconds = json.loads((run / "metrics.json").read_text())["search_seconds"]
    assert first_two + resumed_two - 0.2 <= seconds <= first_two + resumed_wall + 0.2, (first_two, resumed_two, resumed_wall, seconds)

    # another experiment never mixes into this directory, and a refused command leaves the run's files alone
    hydra_cfg = (run / ".hydra" / "config.yaml").read_bytes()
    for extra, line in [
        (["data=fashion_mnist", "resume=true"], "resume=true: data.name='fashion_mnist' differs from the run in"),
        (["seed=1", "resume=true"], "resume=true: seed=1 differs from the run in"),
        (["data=fashion_mnist"], "holds a run already; pass resume=true to continue it or use a new hydra.run.dir"),
    ]:
        assert line in one_error_line(zoo_cli.run(*args, "search.budget=4", *extra, run_dir=run)), extra
    assert (run / ".hydra" / "config.yaml").read_bytes() == hydra_cfg
    assert "resume=true needs hydra.run.dir=DIR" in one_error_line(zoo_cli.run(*args, "resume=true"))


def test_ctrl_c_says_how_to_resume_and_keeps_finished_trials(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """SIGINT (Ctrl-C) mid-search: exit 130 with one line naming the resume command, no traceback;
    the trials finished before it are kept and the resumed search does not redo them."""
    import signal
    import time

    run = tmp_path / "run"
    # 8 trials: the interrupt lands after the first while 7 are still to run, even on a machine busy with other work
    args = ["search=random", "search.budget=8", "trainer.estimate_epochs=2", "trainer.epochs=1", "task.model.layers=2", "threads=1"]
    proc = zoo_cli.start(*args, run_dir=run, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = run / "search_log.jsonl"
    deadline = time.time() + 300
    while (not log.exists() or not log.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and f"hydra.run.dir={run} resume=true" in err.strip().splitlines()[-1]
    kept = log.read_text().splitlines()
    assert 1 <= len(kept) < 8
    resumed = zoo_cli.run(*args, "resume=true", run_dir=run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = log.read_text().splitlines()
    assert after[: len(kept)] == kept and [json.loads(l)["trial"] for l in after] == list(range(8))


def test_fashion_mnist_and_second_order_darts(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    proc = zoo_cli.run(
        "data=fashion_mnist",
        "data.max_train=1000",
        "data.max_test=300",
        "search.order=2",
        "search.epochs=1",
        "search.warmup_epochs=0",
        "trainer.epochs=5",
        "task.model.layers=3",
        "task.supernet.layers=2",
        "task.model.init_channels=8",  # half the default widths: 45 s instead of 75, test accuracy 0.74 (measured)
        "task.supernet.init_channels=4",
        run_dir=run,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.4  # chance is 0.1
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["labels"][9] == "ankle boot" and cfg["model"]["in_chans"] == 1


def test_run_directory_is_named_after_task_and_search_or_finetune() -> None:
    import zoo  # noqa: F401  (registers the run-name resolver)
    from zoo.__main__ import compose_config

    search = compose_config(["search=random"], return_hydra_config=True)
    tune = compose_config(["mode=finetune", "task=detection"], return_hydra_config=True)
    dirs = [str(c.hydra.run.dir).split("/")[1] for c in (search, tune)]
    assert dirs == ["classification-random", "detection-finetune"]


def test_a_trainer_of_another_task_is_refused_in_one_line() -> None:
    from zoo.__main__ import compose_config
    from zoo.config_values import ConfigError
    from zoo.pipeline import build_checks

    with pytest.raises(
        ConfigError,
        match=r"^trainer is not a classification trainer \(has search_items\); allowed with task=classification: trainer=classification$",
    ):
        build_checks(compose_config(["trainer=detection"]))
    with pytest.raises(
        ConfigError,
        match=r"^trainer is not a detection trainer \(has aux_weight, drop_path_prob\); allowed with task=detection: trainer=detection$",
    ):
        build_checks(compose_config(["task=detection", "trainer=classification"]))


def test_a_config_option_defined_by_two_packages_is_refused(tmp_path: Path) -> None:
    from zoo.__main__ import group_options

    for pkg in ("a", "b"):
        (tmp_path / pkg / "data").mkdir(parents=True)
        (tmp_path / pkg / "data" / f"only_{pkg}.yaml").write_text("name: x\n")
    assert group_options([tmp_path / "a", tmp_path / "b"]) == {"data": ["only_a", "only_b"]}
    (tmp_path / "b" / "data" / "only_a.yaml").write_text("name: y\n")
    with pytest.raises(ValueError, match=r"^data=only_a is defined twice: .*a/data/only_a.yaml and .*b/data/only_a.yaml"):
        group_options([tmp_path / "a", tmp_path / "b"])


def test_hydra_flags_after_overrides_still_work(zoo_cli: ZooCli) -> None:
    r = zoo_cli.run("task=detection", "--cfg", "job", progress=None, timeout=300)
    assert r.returncode == 0, r.stderr[-1000:]
    assert "name: detection" in r.stdout and "name: scenes" in r.stdout
