from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# test helpers are imported by module name from any test directory (tests/, tests/tasks/<name>/, tests/contract/)
for _d in [ROOT / "tests", *sorted((ROOT / "tests" / "tasks").glob("*"))]:
    if _d.is_dir() and str(_d) not in sys.path:
        sys.path.insert(1, str(_d))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Small convolutions run fastest on one thread, and far faster than two on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def repo_root() -> Path:
    return ROOT


REQUIRE_ENV = "ZOO_REQUIRE_OPTIONAL"  # "1" (make test): a test whose optional library is missing fails instead of skipping


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"requires(*modules): needs these optional modules; skipped without them unless {REQUIRE_ENV}=1")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # a missing module, or one that fails to load (mmcv without its compiled ops)
        return False
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        missing = [m for m in mark.args if not _importable(m)]
        if missing:
            msg = f"needs {', '.join(missing)} (an optional extra; see pyproject.toml and scripts/install_mmdet.sh)"
            if os.environ.get(REQUIRE_ENV) == "1":
                pytest.fail(f"{msg}, and {REQUIRE_ENV}=1 requires it")
            pytest.skip(msg)
