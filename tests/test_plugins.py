"""A task from another package: registered through the ``zoo.plugins`` entry point, with its own
conf folder on Hydra's search path, it runs through the CLI with no file of ``zoo/`` or ``tasks/``
changed (the registries span packages; the core names no task)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.cli import ZooCli

# the task packages bundled in the repository (tasks/<name>/ with an __init__.py), in the CLI's order
BUNDLED = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "tasks").iterdir() if (p / "__init__.py").is_file())

TOY_TASK = '''
from tasks.classification.task import Classification
from zoo.task import TASKS


@TASKS.register("toy")
class Toy(Classification):
    """Classification under another name, defined outside the zoo repository."""

    name = "toy"
'''

TOY_CONF = """# @package _global_
defaults:
  - override /data: digits
  - override /trainer: classification
task:
  name: toy
  stem: cifar
  model: {init_channels: 4, layers: 2, auxiliary: false}
  estimate_model: {init_channels: 4, layers: 2}
  supernet: {init_channels: 4, layers: 2, multiplier: 4}
"""


def write_plugin(site: Path) -> None:
    """A minimal installed distribution ``toy-task`` whose entry point names the package ``toy_task``."""
    (site / "toy_task" / "conf" / "task").mkdir(parents=True)
    (site / "toy_task" / "__init__.py").write_text(TOY_TASK)
    (site / "toy_task" / "conf" / "task" / "toy.yaml").write_text(TOY_CONF)
    dist = site / "toy_task-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-task\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[zoo.plugins]\ntoy = toy_task\n")


def test_a_task_from_another_package_runs_through_the_cli(tmp_path: Path, zoo_cli: ZooCli) -> None:
    site = tmp_path / "site"
    write_plugin(site)
    env: dict[str, str | None] = {"PYTHONPATH": str(site)}
    run = tmp_path / "run"

    def zoo(*args: str) -> subprocess.CompletedProcess[str]:
        return zoo_cli.run(*args, cwd=tmp_path, env=env, progress=None)

    help_text = zoo("--help").stdout
    assert f"task: {', '.join(sorted([*BUNDLED, 'toy']))}" in help_text
    r = zoo(
        "task=toy",
        "search=random",
        "search.budget=2",
        "trainer.estimate_epochs=1",
        "trainer.epochs=1",
        "threads=1",
        "progress=false",
        f"hydra.run.dir={run}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "toy" and metrics["search_evaluations"] == 2
    assert metrics["test_accuracy"] > 0.2  # ten digit classes: chance is 0.1
    assert json.loads((run / "config.json").read_text())["task"] == "toy"
    # the bundle loads where the plug-in is not installed: a task without a builder of its own gets the cell network
    load = subprocess.run(
        [sys.executable, "-c", f"import zoo; m = zoo.from_pretrained({str(run)!r}); print(type(m).__name__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert load.returncode == 0 and load.stdout.strip() == "NormalizedModel", load.stderr[-2000:]
    # without the plug-in the task is unknown, in one line naming the tasks there are
    env["PYTHONPATH"] = None
    r = zoo("task=toy", f"hydra.run.dir={tmp_path / 'other'}")
    assert r.returncode == 2 and r.stderr.strip() == f"zoo: error: task=toy is unknown; allowed task options: {', '.join(BUNDLED)}"
