"""Markdown rows for BENCHMARKS.md from task=rl run directories (searched vs baseline policy).

    .venv/bin/python bench/rl_table.py outputs/rl-evolution/<time> ...   # one row per run, then the mean per column
    .venv/bin/python bench/rl_table.py --threshold 4 RUN ...             # steps to a return of 4 on the recorded curves

Reads each run's ``metrics.json`` (100-episode test returns, steps to the solved threshold from the
learning curves, parameter counts, search / retrain seconds) and ``run_config.json`` (seed,
strategy, environment); a ``<run>.time`` file beside a run (``/usr/bin/time -f "%e s wall"``)
gives the whole run's wall time. ``--threshold T`` recomputes the steps to threshold from the recorded
learning curves for a return of ``T`` (environments without a solved threshold, e.g. the MinAtar games),
and the last line gives the searched / baseline return ratio with its mean and spread over the runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean, stdev

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.rl.metrics import steps_to  # noqa: E402


def _steps(v: int | None) -> str:
    return "never" if v is None else f"{v / 1000:.1f}k"


def row(run: Path, threshold: float | None = None) -> tuple[str, dict[str, float | None]]:
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "run_config.json").read_text())
    b = m.get("baseline") or {}
    if threshold is not None:
        m = {**m, "steps_to_threshold": steps_to(m.get("curve") or [], threshold)}
        b = {**b, "steps_to_threshold": steps_to(b.get("curve") or [], threshold)}
    wall_file = run.with_name(run.name + ".time")
    wall = float(wall_file.read_text().split()[0]) if wall_file.is_file() else None
    cells = [
        cfg["data.env"],
        cfg["search.name"],
        str(cfg["seed"]),
        f"{m['test_mean_return']:.1f} ± {m['test_std_return']:.1f}",
        _steps(m.get("steps_to_threshold")),
        f"{m['params']:,}",
        f"{b.get('mean_return', float('nan')):.1f} ± {b.get('std_return', float('nan')):.1f}",
        _steps(b.get("steps_to_threshold")),
        f"{b.get('params', 0):,}",
        f"{m.get('search_seconds', 0):.0f} s",
        f"{m.get('train_seconds', 0):.0f} s / {b.get('train_seconds', 0):.0f} s",
        f"{wall:.0f} s" if wall is not None else "-",
    ]
    nums = {
        "searched": m["test_mean_return"],
        "baseline": b.get("mean_return"),
        "searched_steps": m.get("steps_to_threshold"),
        "baseline_steps": b.get("steps_to_threshold"),
    }
    return "| " + " | ".join(cells) + " |", nums


def main(runs: list[str], threshold: float | None = None) -> None:
    print(
        "| env | search | seed | searched return (100 ep.) | searched: steps to threshold | params | "
        "baseline return | baseline: steps to threshold | baseline params | search | retrain searched / baseline | whole run |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [row(Path(r), threshold) for r in runs]
    for text, _ in rows:
        print(text)
    nums = [n for _, n in rows]
    print()
    print(f"mean return: searched {mean(n['searched'] for n in nums):.1f}, baseline {mean(n['baseline'] or 0 for n in nums):.1f}")
    for who in ("searched", "baseline"):
        reached = [n[f"{who}_steps"] for n in nums if n[f"{who}_steps"] is not None]
        print(
            f"{who}: reached the threshold in {len(reached)}/{len(nums)} runs"
            + (f", mean {mean(reached) / 1000:.1f}k steps" if reached else "")
        )
    ratios = [n["searched"] / n["baseline"] for n in nums if n["baseline"] and n["baseline"] > 0 and n["searched"] > 0]
    if ratios and len(ratios) == len(nums):  # a ratio of negative returns (Pendulum) would read backwards
        spread = f" ± {stdev(ratios):.2f}" if len(ratios) > 1 else ""
        print(f"searched / baseline return: {mean(ratios):.2f}{spread} (" + ", ".join(f"{r:.2f}" for r in ratios) + ")")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Markdown rows for BENCHMARKS.md from task=rl run directories.")
    ap.add_argument("runs", nargs="+", help="run directories (metrics.json + run_config.json)")
    ap.add_argument("--threshold", type=float, default=None, help="steps to this return, from the recorded learning curves")
    a = ap.parse_args()
    main(a.runs, a.threshold)
