"""The test machinery: the tiers (tests/helpers/tiers.py), where ``e2e`` and ``multiprocess`` follow the
fixtures a test uses and a test that starts the CLI or processes without them fails, so ``make test-fast``
cannot drift; and outputs shared by the xdist workers (tests/helpers/shared.py), made once per run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.tiers import E2E, MULTIPROCESS, commands_tier

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "argv,marks",
    [
        (["python", "-m", "zoo", "search=random"], {E2E}),
        (["python", "-m", "zoo.hub", "list"], {E2E}),
        (["python", "-c", "from zoo.hub.__main__ import main; main()"], {E2E}),
        (["python", "-m", "zoo", "runner=process"], {E2E, MULTIPROCESS}),
        (["python", "-m", "zoo", "-m", "runner=local,ray", "seed=0,1"], {E2E, MULTIPROCESS}),
        (["python", "-m", "zoo", "-m", "hydra/launcher=submitit_local"], {E2E, MULTIPROCESS}),
        (["python", "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "zoo"], {E2E, MULTIPROCESS}),
        (["/venv/bin/ray", "start", "--head"], {MULTIPROCESS}),
        ("python -m zoo --help", {E2E}),
        (["python", "-c", "import zoo; zoo.from_pretrained('x')"], set()),
        (["python", "-m", "pip", "wheel", "."], set()),
        (["python", "-m", "zoo", "runner=local", "runner.workers=2"], {E2E}),
    ],
)
def test_what_a_command_needs(argv: list[str] | str, marks: set[str]) -> None:
    from helpers.tiers import _argv

    assert set(commands_tier(_argv(argv))) == marks


CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from helpers.tiers import multiprocess, register, zoo_cli  # noqa: F401


def pytest_configure(config):
    register(config)
"""

INNER = """
import multiprocessing
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "pass  # stands for zoo.__main__"]  # what the guard takes for the command line


def _child():
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=int)
    p.start()
    p.join()


@pytest.fixture(scope="session")
def shared_run(zoo_cli):
    return subprocess.run(CLI).returncode


def test_cli_without_the_fixture():
    subprocess.run(CLI)


def test_cli_with_the_fixture(zoo_cli, request):
    assert subprocess.run(CLI).returncode == 0 and request.node.get_closest_marker("e2e")
    assert not request.node.get_closest_marker("multiprocess")


def test_cli_through_a_shared_fixture(shared_run, request):
    assert shared_run == 0 and request.node.get_closest_marker("e2e")


def test_process_without_the_fixture():
    _child()


def test_process_with_the_fixture(multiprocess, request):
    _child()
    assert request.node.get_closest_marker("xdist_group").args == ("multiprocess",)


def test_torchrun_needs_both(zoo_cli):
    subprocess.run([sys.executable, "-c", "pass", "-m", "torch.distributed.run", "-m", "zoo"])


def test_neither():
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
"""


def _inner(tmp_path: Path, test: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--rootdir",
        str(tmp_path),
        *args,
        str(tmp_path),
    ]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_the_guard_fails_a_test_that_starts_more_than_its_fixtures_say(tmp_path: Path) -> None:
    r = _inner(tmp_path, INNER, "-rf")
    failed = {line.split("::")[1].split(" ")[0] for line in r.stdout.splitlines() if line.startswith("FAILED ")}
    assert failed == {"test_cli_without_the_fixture", "test_process_without_the_fixture", "test_torchrun_needs_both"}, r.stdout
    assert "4 passed" in r.stdout, r.stdout
    assert "test_cli_without_the_fixture starts the command line" in r.stdout and "request the zoo_cli fixture" in r.stdout
    assert "request the multiprocess fixture" in r.stdout
    deselected = _inner(tmp_path, INNER, "-m", "not e2e and not multiprocess")
    assert "2 failed, 1 passed, 4 deselected" in deselected.stdout, deselected.stdout  # what `make test-fast` keeps


def test_a_hand_written_tier_mark_is_refused(tmp_path: Path) -> None:
    r = _inner(tmp_path, "import pytest\n\n\n@pytest.mark.e2e\ndef test_x():\n    pass\n")
    assert r.returncode != 0 and "the e2e mark is derived, not written: request the zoo_cli fixture" in r.stdout + r.stderr


class _Base:
    """A stand-in for ``tmp_path_factory`` on one xdist worker: its base is a per-worker directory."""

    def __init__(self, root: Path, worker: str) -> None:
        self.base = root / f"popen-{worker}"

    def getbasetemp(self) -> Path:
        self.base.mkdir(parents=True, exist_ok=True)
        return self.base


def test_a_shared_output_is_made_once_per_run_and_a_failure_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.shared import once_per_run

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    calls: list[Path] = []

    def make(d: Path) -> None:
        calls.append(d)
        (d / "out.txt").write_text("made")

    one = once_per_run(_Base(tmp_path, "gw0"), "run", make)  # type: ignore[arg-type]
    two = once_per_run(_Base(tmp_path, "gw1"), "run", make)  # type: ignore[arg-type]  (the other worker)
    assert one == two == tmp_path / "shared" / "run" and calls == [one] and (one / "out.txt").read_text() == "made"

    def broken(d: Path) -> None:
        calls.append(d)
        raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError, match="the run failed"):
        once_per_run(_Base(tmp_path, "gw0"), "bad", broken)  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception, match=r"(?s)making the shared 'bad' failed in another worker:.*the run failed"):
        once_per_run(_Base(tmp_path, "gw1"), "bad", broken)  # type: ignore[arg-type]
    assert len(calls) == 2  # the second worker did not repeat the failing work


GROUPED = """
import pytest


@pytest.mark.parametrize("i", range(3))
def test_pool(multiprocess, i):
    pass


@pytest.mark.parametrize("i", range(3))
def test_unit(i):
    pass
"""


def test_multiprocess_tests_share_one_xdist_worker(tmp_path: Path) -> None:
    """Under ``-n 2 --dist loadgroup`` every multiprocess test runs on the same worker (pytest-xdist 3.8 no
    longer groups by itself under pytest 9: helpers/tiers.py renames the tests as xdist meant to)."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(GROUPED)
    cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "--rootdir", str(tmp_path)]
    r = subprocess.run([*cmd, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    workers = {line.split("]")[0] for line in r.stdout.splitlines() if "PASSED" in line and "test_pool[" in line}
    passed = [line.rstrip() for line in r.stdout.splitlines() if "PASSED" in line]
    assert len(workers) == 1 and sum(line.endswith("@multiprocess") for line in passed) == 3, r.stdout[-3000:]
