"""Wall-clock start-up of the command lines: ``python -m zoo --help`` and ``python -m zoo.hub list``.

Each command runs ``--runs`` times in a fresh interpreter (after one unmeasured warm-up run, so the
file-system cache is warm as on a second call), from the repository root, with one BLAS/OpenMP
thread; the table gives the minimum and the median wall time, and the CPU time (user + system) of
the median run's children. The target (issue 20) is 1.5 s each on an idle machine; run it on one:

    python bench/cli_startup.py --runs 10

``--importtime`` also prints the ten slowest top-level imports of each command (``python -X
importtime``; modules loaded through ``importlib.import_module`` are not listed there).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"zoo --help": ["-m", "zoo", "--help"], "zoo.hub list": ["-m", "zoo.hub", "list"]}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def time_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run of ``python ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slowest_imports(args: list[str], n: int = 10) -> list[tuple[float, str]]:
    """The ``n`` top-level imports with the largest cumulative time (seconds, module)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):  # one space: a top-level import
                rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7, help="measured runs per command (after one warm-up)")
    p.add_argument("--importtime", action="store_true", help="also list each command's slowest top-level imports")
    args = p.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.runs} runs each\n")
    print(f"{'command':<14} {'min s':>7} {'median s':>9} {'cpu s (median run)':>19}")
    for name, cmd in COMMANDS.items():
        time_once(cmd)  # warm-up: the file-system cache
        runs = sorted(time_once(cmd) for _ in range(args.runs))
        median = runs[len(runs) // 2]
        print(f"{name:<14} {runs[0][0]:>7.3f} {statistics.median(r[0] for r in runs):>9.3f} {median[1]:>19.3f}")
    if args.importtime:
        for name, cmd in COMMANDS.items():
            print(f"\nslowest top-level imports of {name}:")
            for seconds, module in slowest_imports(cmd):
                print(f"  {seconds:7.3f} s  {module}")


if __name__ == "__main__":
    main()
