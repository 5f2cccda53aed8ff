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
# what the tests share lives in tests/helpers/ (``from helpers.cli import ...``); test modules never import each other
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(1, str(ROOT / "tests"))
# two torch threads at most, and one per xdist worker when workers share the cores (small convolutions slow
# down by orders of magnitude when more threads than cores spin against each other)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))))

# the zoo_cli and multiprocess fixtures: their use marks a test e2e / multiprocess (tests/helpers/tiers.py)
from helpers.tiers import multiprocess, register, zoo_cli  # noqa: E402, F401  (tests/ is on sys.path from here)


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
    register(config)  # the e2e and multiprocess marks follow the fixtures a test uses; a guard checks what it starts


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
