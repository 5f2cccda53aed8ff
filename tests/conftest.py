from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
