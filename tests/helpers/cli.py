"""One way for the tests to run the command line, ``python -m zoo ...`` or ``python -m zoo.hub ...``,
in a subprocess, and to read the one-line error it ends with when it refuses a value.

Tests get it through the ``zoo_cli`` fixture (tests/conftest.py): a test that requests it, directly
or through another fixture, is marked ``e2e`` (and a test that starts the CLI without it fails; see
helpers/tiers.py). ``one_error_line`` starts nothing and is imported directly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# one BLAS/OpenMP thread per CLI process: a test's subprocess shares 2 cores with the other xdist worker
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cli_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with one thread per process and ``overrides`` (a None value removes the variable)."""
    env = {**os.environ, **THREADS}
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def zoo_command(
    *args: str,
    module: str = "zoo",
    run_dir: Path | None = None,
    progress: bool | None = False,
    python: str | os.PathLike[str] | None = None,
    launcher: Sequence[str] = (),
    prelude: str | None = None,
) -> list[str]:
    """``python [launcher] -m module args... [progress=false] [hydra.run.dir=run_dir]``.

    ``progress`` is appended to a ``zoo`` run unless None or an argument sets it already; ``launcher``
    goes between the interpreter and ``-m`` (``["-m", "torch.distributed.run", ...]``); ``prelude`` is
    Python run first in the same process, then the module's ``main(argv)`` (``zoo.hub`` has one)."""
    cmd = [str(python or sys.executable), *launcher]
    if prelude is None:
        cmd += ["-m", module]
    else:
        cmd += ["-c", f"{prelude}\nimport sys\nfrom {module}.__main__ import main\nraise SystemExit(main(sys.argv[1:]))"]
    cmd += [str(a) for a in args]
    if module == "zoo" and progress is not None and not any(str(a).startswith("progress=") for a in args):
        cmd.append(f"progress={str(progress).lower()}")
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    return cmd


class ZooCli:
    """Runs the command line the way every test does: from the repository root unless ``cwd`` says
    otherwise, one thread per process, output captured as text, a timeout."""

    root = ROOT

    def run(
        self,
        *args: Any,
        run_dir: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        timeout: float = 600,
        check: bool = False,
        **command: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Runs to the end; ``check`` asserts exit status 0 (with the output's tails as the message).
        ``command`` takes :func:`zoo_command`'s options (module, progress, python, launcher, prelude)."""
        cmd = zoo_command(*args, run_dir=run_dir, **command)
        proc = subprocess.run(cmd, cwd=cwd or ROOT, env=cli_env(env), capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def start(
        self,
        *args: Any,
        run_dir: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.DEVNULL,
        **command: Any,
    ) -> subprocess.Popen[str]:
        """Starts it and returns at once (to be killed, interrupted or waited for); output discarded unless asked for."""
        cmd = zoo_command(*args, run_dir=run_dir, **command)
        # Ctrl-C as a shell gives it: the child starts with SIGINT's default action, even where this worker inherited it
        # ignored (a test that sends SIGINT must reach the CLI's KeyboardInterrupt handler)
        return subprocess.Popen(cmd, cwd=cwd or ROOT, env=cli_env(env), stdout=stdout, stderr=stderr, text=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_error_line(proc: subprocess.CompletedProcess[str], prog: str = "zoo", alone: bool = True) -> str:
    """The error of a run refused as it should be: exit status 2, no traceback, one line starting with
    ``<prog>: error: ``, and (``alone``) nothing else on stderr, not even a blank line; ``alone=False``
    lets other lines be there (Ray's own warnings)."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.stdout + err)[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and (not alone or len(lines) == 1), err[-3000:]
    return errors[0]
