"""Trained-candidate throughput of a multi-trial search on 1 vs 2 Ray workers, side by side.

The same random search (classification on digits, ``estimate=train``: every candidate is
trained for ``trainer.estimate_epochs`` and scored on the validation split) runs once per
runner setting, each in its own CLI process and run directory:

* ``ray-1x1``: ``runner=ray runner.workers=1 runner.num_cpus=1`` (one candidate at a time, one thread)
* ``ray-1x2``: ``runner=ray runner.workers=1 runner.num_cpus=2`` (one candidate at a time, two threads)
* ``ray-2x1``: ``runner=ray runner.workers=2 runner.num_cpus=1`` (two candidates at a time, one thread each)
* ``local``: ``runner=local`` with ``threads=1`` (no Ray at all, the reference)

Throughput is candidates per minute over the search phase: the spread between the first
candidate's start and the last one's end, both read from ``search_log.jsonl`` (each record
holds when it was logged and the seconds its candidate took in its worker), so Ray's start-up,
the workers' first task build and the retraining are left out. Run it on an otherwise idle machine:

    python bench/runner_throughput.py --budget 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "local": ["runner=local", "threads=1"],
    "ray-1x1": ["runner=ray", "runner.workers=1", "runner.num_cpus=1"],
    "ray-1x2": ["runner=ray", "runner.workers=1", "runner.num_cpus=2"],
    "ray-2x1": ["runner=ray", "runner.workers=2", "runner.num_cpus=1"],
}


def search_phase(log: Path) -> tuple[int, float, float]:
    """(candidates, seconds of the search phase, mean seconds per candidate) from a run's log."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    ends = [r["finished_at"] for r in records]
    starts = [r["finished_at"] - r["seconds"] for r in records]
    return len(records), max(ends) - min(starts), sum(r["seconds"] for r in records) / len(records)


def run(name: str, budget: int, out: Path) -> dict[str, float]:
    run_dir = out / name
    args = ["search=random", f"search.budget={budget}", "trainer.estimate_epochs=2", "trainer.epochs=1", "task.estimate_model.layers=3"]
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", *args, *SETTINGS[name], "progress=false", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    n, phase, per = search_phase(run_dir / "search_log.jsonl")
    return {"candidates": n, "search_s": phase, "per_candidate_s": per, "per_minute": 60 * n / phase, "whole_run_s": time.time() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {name: run(name, args.budget, Path(tmp)) for name in args.settings}
    print("| setting | candidates | search phase (s) | s per candidate | candidates / min | whole run (s) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['candidates']} | {r['search_s']:.1f} | {r['per_candidate_s']:.2f} | {r['per_minute']:.1f} | {r['whole_run_s']:.0f} |"
        )
    if "ray-1x1" in rows and "ray-2x1" in rows:
        print(f"\nthroughput ray-2x1 / ray-1x1: {rows['ray-2x1']['per_minute'] / rows['ray-1x1']['per_minute']:.2f}x")
    if "ray-1x2" in rows and "ray-2x1" in rows:
        print(f"throughput ray-2x1 / ray-1x2: {rows['ray-2x1']['per_minute'] / rows['ray-1x2']['per_minute']:.2f}x")


if __name__ == "__main__":
    main()
