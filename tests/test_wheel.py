"""The installed package (issue 9): a wheel built from the checkout holds the config groups (core and
each task's), the hub registry and its release files, and ``python -m zoo`` runs from it, outside
the checkout, in a fresh virtual environment.

The fresh environment gets the already-installed dependencies (torch, hydra, ...) through a ``.pth``
path line to this interpreter's site-packages instead of reinstalling them. A plain path line does
not run that site-packages' own ``.pth`` files, so the editable install of the checkout stays out and
``zoo`` / ``tasks`` are imported from the wheel (asserted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from helpers.cli import ZooCli, cli_env

ROOT = Path(__file__).resolve().parent.parent

# named in issue 9: the CLI needs the core groups and each task package's groups
NAMED_FILES = [
    "zoo/conf/config.yaml",
    "zoo/conf/search/darts.yaml",
    "tasks/classification/conf/task/classification.yaml",
    "tasks/detection/conf/data/trees.yaml",
    "zoo/hub/registry.json",
]
# what the build copies from the checkout: everything but what .gitignore leaves out (a stale build/
# would put deleted modules into the wheel, and builds would share it)
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", "outputs", "multirun", ".pytest_cache", ".cache"
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _expected_files() -> list[str]:
    """The named files, every config YAML, the hub's release files and every module of the checkout."""
    files = {*NAMED_FILES}
    confs = [*(ROOT / "zoo" / "conf").rglob("*.yaml"), *(ROOT / "tasks").glob("*/conf/**/*.yaml")]
    releases = [p for p in (ROOT / "zoo" / "hub" / "releases").rglob("*") if p.is_file()]
    modules = [p for top in ("zoo", "tasks") for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts]
    assert releases, "zoo/hub/releases holds no files"
    files.update(p.relative_to(ROOT).as_posix() for p in [*confs, *releases, *modules])
    return sorted(files)


def _group_options(help_text: str, group: str) -> set[str]:
    line = next((l for l in help_text.splitlines() if l.startswith(f"{group}: ")), None)
    assert line is not None, f"--help lists no group {group!r}:\n{help_text}"
    return set(line[len(group) + 2 :].split(", "))


def test_wheel_installs_a_working_cli(tmp_path: Path, zoo_cli: ZooCli) -> None:
    overrides: dict[str, str | None] = dict.fromkeys(("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "ZOO_REGISTRY"))
    overrides.update(
        PYTHONNOUSERSITE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        ZOO_HOME=str(tmp_path / "zoo_home"),
    )
    env = cli_env(overrides)  # one thread per process, as in every CLI run of the tests

    # 1. the wheel, built from a copy of the checkout with this interpreter's setuptools
    src, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED)
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    (wheel,) = dist.glob("zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in _expected_files() if f not in names]
    assert not missing, f"{wheel.name} lacks {len(missing)} files of the checkout: {missing}"

    # 2. a fresh venv from the same base interpreter; the wheel installed before the deps' path is added
    venv = tmp_path / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    site_dir = Path(
        _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path, env=env, timeout=60).stdout.strip()
    )
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))  # this interpreter's site-packages
    (site_dir / "zoo_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))

    # 3. from a directory outside the checkout
    work = tmp_path / "work"
    work.mkdir()
    where = _run(
        [str(py), "-c", "import zoo, tasks, torch; print(zoo.__file__); print(tasks.__file__); print(torch.__file__)"],
        cwd=work,
        env=env,
        timeout=120,
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(venv.resolve()) for p in where[:2]), f"zoo/tasks not imported from the wheel: {where}"
    assert not Path(where[2]).resolve().is_relative_to(venv.resolve()), "torch was installed into the fresh venv"

    help_text = zoo_cli.run("--help", python=py, progress=None, cwd=work, env=overrides, timeout=180, check=True).stdout
    assert {"classification", "detection"} <= _group_options(help_text, "task")
    assert {"digits", "trees"} <= _group_options(help_text, "data")
    assert {"classification", "detection"} <= _group_options(help_text, "trainer")
    assert "darts" in _group_options(help_text, "search")

    listing = zoo_cli.run("list", module="zoo.hub", python=py, cwd=work, env=overrides, timeout=180, check=True).stdout
    assert "digits-darts" in listing and "trees-fpn-darts" in listing, listing
    # the release files shipped in the wheel are the entry's files (checked against their sha256)
    zoo_cli.run(
        "download", "digits-darts", "--dir", tmp_path / "dl", module="zoo.hub", python=py, cwd=work, env=overrides, timeout=180, check=True
    )
    assert (tmp_path / "dl" / "model.safetensors").is_file()

    # 4. a tiny real search + retrain on the bundled digits (seeds 0-2 reach 0.73-0.93; chance is 0.1)
    run = tmp_path / "run"
    zoo_cli.run(
        "search.epochs=2",
        "trainer.epochs=1",
        "task.model.layers=2",
        "task.supernet.layers=2",
        "threads=1",
        "progress=false",
        f"hydra.run.dir={run}",
        python=py,
        cwd=work,
        env=overrides,
        timeout=600,
        check=True,
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["search"] == "darts"
    assert metrics["test_accuracy"] > 0.3, metrics
