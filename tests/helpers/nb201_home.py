"""How the NAS-Bench-201 tests reach the tables: as users do, through the zoo's ``nb201`` entry
(kind ``benchmark``, shipped compressed in zoo/hub/releases/nb201/), fetched on first use into
a zoo cache private to this test process; nothing outside the repository is read.

A test module uses it with ``from helpers.nb201_home import nb201_zoo_home  # noqa: F401``: the
module-scoped autouse fixture points ``ZOO_HOME`` at that cache (subprocesses inherit it) and
clears ``ZOO_NB201_ROOT`` and ``ZOO_REGISTRY``, so the estimator's default look-up is tested.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@functools.cache
def zoo_home() -> Path:
    """One empty ZOO_HOME per test process (the tables are then fetched and parsed once)."""
    d = Path(tempfile.mkdtemp(prefix="zoo-home-nb201-"))
    atexit.register(shutil.rmtree, d, True)
    return d


@pytest.fixture(autouse=True, scope="module")
def nb201_zoo_home() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(zoo_home()))
        mp.delenv("ZOO_NB201_ROOT", raising=False)
        mp.delenv("ZOO_REGISTRY", raising=False)
        yield zoo_home()
