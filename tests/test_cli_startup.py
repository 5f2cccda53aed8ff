"""The command lines start without the heavy libraries they do not use: ``python -m zoo --help``
reads config files only and ``python -m zoo.hub list`` a registry and the tasks' hub facts, so
neither imports torch, torchvision, timm, transformers, segmentation-models-pytorch,
stable-baselines3, gymnasium or matplotlib (issue 20 item 6; ``bench/cli_startup.py`` times them).
What is imported is checked, not how long it takes, so the test does not depend on the machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import ZooCli

HEAVY = (
    "torch",
    "torchvision",
    "timm",
    "transformers",
    "segmentation_models_pytorch",
    "stable_baselines3",
    "gymnasium",
    "matplotlib",
    "safetensors",
    "numpy",
)

# run before the command's main(): prints, at exit, the heavy libraries the process imported
REPORT = (
    "import atexit, sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "atexit.register(lambda: print('heavy imports:', ','.join(sorted(m for m in sys.modules if m.split('.')[0] in HEAVY and '.' not in m)), file=sys.stderr))"
)


def heavy_imports(proc: subprocess.CompletedProcess[str]) -> list[str]:
    line = [x for x in proc.stderr.splitlines() if x.startswith("heavy imports:")]
    assert len(line) == 1, proc.stderr[-3000:]
    return [m for m in line[0].partition(":")[2].strip().split(",") if m]


@pytest.mark.parametrize(
    ("module", "args", "expect"),
    [("zoo", ["--help"], "== Configuration groups =="), ("zoo.hub", ["list"], "digits-darts")],
    ids=["zoo-help", "hub-list"],
)
def test_the_command_lines_start_without_heavy_libraries(zoo_cli: ZooCli, module: str, args: list[str], expect: str) -> None:
    proc = zoo_cli.run(*args, module=module, prelude=REPORT, progress=None, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout
    assert heavy_imports(proc) == []


def test_hub_list_shows_every_tasks_headline_without_torch(zoo_cli: ZooCli) -> None:
    """The headline metrics come from each task's hub facts (tasks/<name>/hub.py), imported alone."""
    proc = zoo_cli.run("list", module="zoo.hub", prelude=REPORT, progress=None, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "accuracy" in rows["digits-darts"] and "mAP@0.5" in rows["trees-fpn-darts"]
    assert "return" in rows["cartpole-ppo-evolution"] and "mIoU" in rows["nuclei-autodeeplab-darts"]
    assert "BLEU" in rows["de-en-et-evolution"]
    assert heavy_imports(proc) == []


def test_import_zoo_imports_no_heavy_library() -> None:
    """``import zoo`` is light; ``zoo.list_models`` and ``zoo.Genotype`` import the model code on first use,
    and the run directory's resolver is registered once OmegaConf is imported, before or after zoo."""
    code = (
        "import sys\nimport zoo\nassert 'omegaconf' not in sys.modules\n"
        "from omegaconf import OmegaConf\nassert OmegaConf.has_resolver('zoo_run_name')\n"
        "assert 'darts_v2' in zoo.list_models() and zoo.Genotype.__name__ == 'Genotype'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    light = subprocess.run([sys.executable, "-c", f"{REPORT}\nimport zoo"], capture_output=True, text=True, timeout=120)
    assert heavy_imports(light) == []
    before = subprocess.run(
        [sys.executable, "-c", "from omegaconf import OmegaConf\nimport zoo\nassert OmegaConf.has_resolver('zoo_run_name')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert before.returncode == 0, before.stderr[-3000:]


# a registering decorator at module level, or an op registered in zoo.space.ops.OPS (``op(name, DOMAIN)``)
REGISTERING = re.compile(
    r"^@(\w+\.register|finetuner|player|model_builder|genotype_class)\b|\bOPS\.(add|register)\(|(?<![\w.])op\(\w+, DOMAIN\b", re.M
)


def test_load_plugins_imports_every_module_that_registers() -> None:
    """The bundled task packages import nothing themselves: ``zoo.plugins.load_plugins`` imports what
    their ``PLUGIN_MODULES`` list. A module with a registering decorator that no list reaches (directly
    or through what the listed modules import) would silently be missing from its registry."""
    root = Path(__file__).resolve().parents[1]
    registering = sorted(
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for p in (root / "tasks").rglob("*.py")
        if REGISTERING.search(p.read_text())
    )
    assert len(registering) >= 20 and "tasks.translation.ops" in registering  # five tasks, several registering modules each
    code = "import json, sys\nfrom zoo.plugins import load_plugins\nload_plugins()\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('tasks'))))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [m for m in registering if m not in imported] == []
