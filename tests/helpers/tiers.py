"""The test tiers, derived from what a test uses, and a guard that catches a test using more than that.

* ``e2e``: the test starts the command line in a subprocess. It is the tests whose fixtures include
  ``zoo_cli`` (requested directly or through another fixture, e.g. a shared run directory).
* ``multiprocess``: the test starts process pools (``runner=process``, a ``ProcessPoolExecutor``,
  ``multiprocessing``, DataLoader workers), Ray, torchrun or spawned DDP replicas. It is the tests whose
  fixtures include ``multiprocess``. They also get ``xdist_group("multiprocess")``: under
  ``--dist loadgroup`` they all run on one worker, one after another, so two pools (or a Ray cluster and
  torchrun) never fight over the two cores.

``make test-fast`` runs ``-m "not e2e and not multiprocess and not slow"``. Neither ``e2e`` nor
``multiprocess`` may be written by hand (collection stops with a usage error), so those tiers follow the
fixtures and cannot drift. ``slow`` is the one hand-written mark: an in-process search checked for what it
learns (many seeds, or a supernet trained to a score) or killed and resumed; it costs tens of seconds of CPU and
starts nothing.

The guard: while a test sets up and runs (including the higher-scoped fixtures it triggers), every
subprocess start (``subprocess.Popen``) and every ``multiprocessing`` process start is checked. A test
not marked ``e2e`` that starts ``python -m zoo`` / ``zoo.hub`` (or their ``main`` through ``-c``), or
not marked ``multiprocess`` that starts a process pool, Ray, torchrun, or a CLI run with
``runner=process|ray`` or another Hydra launcher, fails, naming the fixture to request.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import ZooCli

E2E, MULTIPROCESS = "e2e", "multiprocess"
# the fixture whose use gives each mark
FIXTURE = {E2E: "zoo_cli", MULTIPROCESS: "multiprocess"}
GROUP = "multiprocess"  # the xdist group of every multiprocess test

_CLI_CODE = re.compile(r"\bzoo(\.\w+)*\.__main__\b")
_POOL_OPTION = re.compile(r"^[+~]*(runner=\S*\b(process|ray)\b|hydra/launcher=)")


def _argv(args: Any) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        return shlex.split(os.fsdecode(args))
    return [os.fsdecode(a) for a in args]


def cli_module(argv: Sequence[str]) -> str | None:
    """The zoo module a command starts as its command line (``-m zoo``, ``-m zoo.hub``, or ``-c`` code that runs their ``main``)."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "-m" and (value == "zoo" or value.startswith("zoo.")):
            return value
        if flag == "-c" and _CLI_CODE.search(value):
            return "zoo (through -c)"
    return None


def process_starter(argv: Sequence[str]) -> str | None:
    """What makes a command start processes of its own: torchrun, Ray, a CLI run with a process/Ray runner or launcher."""
    if not argv:
        return None
    if any(a == "torch.distributed.run" or Path(a).name == "torchrun" for a in argv):
        return "torchrun"
    if Path(argv[0]).name == "ray" or "/ray/" in argv[0]:
        return "Ray"
    pools = [a for a in argv if _POOL_OPTION.match(a)]
    return f"a CLI run with {' '.join(pools)}" if pools else None


def commands_tier(argv: Sequence[str]) -> dict[str, str]:
    """The marks a test needs to start ``argv``, each with why."""
    need = {}
    if (module := cli_module(argv)) is not None:
        need[E2E] = f"starts the command line (python -m {module})"
    if (starter := process_starter(argv)) is not None:
        need[MULTIPROCESS] = f"starts {starter}"
    return need


def _join_group(item: pytest.Item, group: str) -> None:
    """What ``--dist loadgroup`` does to an ``xdist_group`` test: its node id gets ``@group``, and the
    scheduler sends the tests of one group to one worker. pytest-xdist 3.8 sets ``item._nodeid`` for that,
    which pytest 9 no longer reads (the id is ``item._id``): without this every group would be ignored."""
    nodeid = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):  # pytest >= 9
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]


class TierPlugin:
    """Registered by tests/conftest.py: marks the tiers at collection and guards them while tests run."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.elsewhere: list[str] = []
        self._popen_execute = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        self._process_start = multiprocessing.process.BaseProcess.start

    # -- collection: the marks follow the fixtures
    @pytest.hookimpl(tryfirst=True)  # before -m deselects and before xdist sends the collection
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            by_hand = [m.name for m in item.iter_markers() if m.name in FIXTURE]
            if by_hand:
                raise pytest.UsageError(
                    f"{item.nodeid}: the {', '.join(by_hand)} mark is derived, not written: request the "
                    f"{' / '.join(FIXTURE[m] for m in by_hand)} fixture instead (tests/helpers/tiers.py)"
                )
            names = set(getattr(item, "fixturenames", ()))
            if FIXTURE[E2E] in names:
                item.add_marker(E2E)
            if FIXTURE[MULTIPROCESS] in names:
                item.add_marker(MULTIPROCESS)
                item.add_marker(pytest.mark.xdist_group(GROUP))
            groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")})
            if FIXTURE[MULTIPROCESS] in names and groups != [GROUP]:  # xdist would run it in a group of its own, beside the others
                raise pytest.UsageError(f"{item.nodeid}: a multiprocess test runs in the xdist group {GROUP!r} only, not {groups}")
            if groups and getattr(item.config.option, "loadgroup", False):  # an xdist worker of --dist loadgroup
                _join_group(item, "_".join(groups))

    # -- the guard: on while a test (and any fixture it triggers) sets up and runs; off in teardown,
    # where a module- or session-scoped fixture may be finalised by a test that never used it
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        with self._guarding(item):
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        with self._guarding(item):
            return (yield)

    @contextlib.contextmanager
    def _guarding(self, item: pytest.Item) -> Iterator[None]:
        self.item, self.elsewhere = item, []
        try:
            yield
        finally:
            self.item = None
        if self.elsewhere:  # refused in another thread, where the failure may have been swallowed
            pytest.fail(self.elsewhere[0], pytrace=False)

    def install(self) -> None:
        plugin = self
        popen_execute, process_start = self._popen_execute, self._process_start

        def _execute_child(popen: subprocess.Popen, args: Any, *rest: Any, **kw: Any) -> Any:
            for mark, why in commands_tier(_argv(args)).items():
                plugin.check(mark, f"{why}: {' '.join(_argv(args))[:300]}")
            return popen_execute(popen, args, *rest, **kw)

        def start(process: multiprocessing.process.BaseProcess) -> None:
            plugin.check(MULTIPROCESS, f"starts a {type(process).__name__} ({process.name})")
            return process_start(process)

        subprocess.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
        multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]

    def uninstall(self) -> None:
        subprocess.Popen._execute_child = self._popen_execute  # type: ignore[attr-defined]
        multiprocessing.process.BaseProcess.start = self._process_start  # type: ignore[method-assign]

    def check(self, mark: str, why: str) -> None:
        item = self.item
        if item is None or item.get_closest_marker(mark) is not None:
            return
        message = (
            f"{item.nodeid} {why}, but is not marked {mark}: request the {FIXTURE[mark]} fixture "
            f"(directly or through the fixture that does this), which marks it (tests/helpers/tiers.py)"
        )
        if threading.current_thread() is not threading.main_thread():
            self.elsewhere.append(message)
        pytest.fail(message, pytrace=False)


class Processes:
    """The ``multiprocess`` fixture's value: what tests that start processes share."""

    @staticmethod
    def torchrun(nproc: int) -> list[str]:
        """The launcher arguments for ``python -m torch.distributed.run`` on this machine, ``nproc`` ranks."""
        return ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]

    @staticmethod
    def children(pid: int) -> set[int]:
        """Live processes whose parent is ``pid``."""
        out = set()
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        out.add(int(d.name))
                except (OSError, IndexError, ValueError):
                    continue
        return out


def register(config: pytest.Config) -> TierPlugin:
    """Marks the tiers from the fixtures below and guards them (tests/conftest.py calls it in ``pytest_configure``)."""
    known = {line.split(":")[0].strip() for line in config.getini("markers")}
    for mark, fixture in FIXTURE.items():  # pyproject.toml registers them; a run outside the repository gets them here
        if mark not in known:
            config.addinivalue_line("markers", f"{mark}: set on the tests that use the {fixture} fixture")
    plugin = TierPlugin()
    plugin.install()
    config.pluginmanager.register(plugin, "zoo-test-tiers")
    config.add_cleanup(plugin.uninstall)
    return plugin


# the fixtures whose use gives the marks (imported into tests/conftest.py)
@pytest.fixture(scope="session")
def zoo_cli() -> ZooCli:
    """Runs ``python -m zoo`` / ``zoo.hub`` in a subprocess (helpers/cli.py); a test that uses it,
    directly or through another fixture, is marked ``e2e``."""
    return ZooCli()


@pytest.fixture(scope="session")
def multiprocess() -> Processes:
    """For tests that start process pools, Ray, torchrun or spawned replicas: a test that uses it,
    directly or through another fixture, is marked ``multiprocess`` and runs in that xdist group."""
    return Processes()
