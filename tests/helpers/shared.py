"""Expensive fixture outputs made once per test run and read by every test that needs them.

Under pytest-xdist a ``scope="session"`` fixture runs once per worker, so a finished CLI run or a
pair of DDP replicas that several tests only read would be made twice. :func:`once_per_run` makes
such a directory once in the run's shared temporary root (``tmp_path_factory``'s base, the parent of
each worker's), under a file lock: the first worker to ask makes it, the others wait and read it. A
failure is recorded too, so a second worker fails at once with the first one's error instead of
repeating the work.
"""

from __future__ import annotations

import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

DONE, FAILED = ".done", ".failed"


def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary root shared by all the workers of this run (the base itself without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The directory ``name``, filled by ``make(directory)`` once in this test run (whatever the number
    of workers); the tests that get it must only read it."""
    root = run_root(tmp_path_factory) / "shared"
    root.mkdir(parents=True, exist_ok=True)
    d = root / name
    with FileLock(str(root / f"{name}.lock")):
        if (root / f"{name}{FAILED}").exists():
            pytest.fail(f"making the shared {name!r} failed in another worker:\n{(root / f'{name}{FAILED}').read_text()}", pytrace=False)
        if not (root / f"{name}{DONE}").exists():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            try:
                make(d)
            except BaseException:
                (root / f"{name}{FAILED}").write_text(traceback.format_exc()[-5000:])
                raise
            (root / f"{name}{DONE}").touch()
    return d
