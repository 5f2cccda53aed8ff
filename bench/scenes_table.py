"""Searched vs same-size hand-made model on data=scenes: run the default search over seeds, then one Markdown table.

    .venv/bin/python bench/scenes_table.py detection --seeds 0,1,2 --jobs 2 --out /tmp/scenes_det
    .venv/bin/python bench/scenes_table.py segmentation --seeds 0,1,2 --jobs 2 --out /tmp/scenes_seg -- search=pc_darts

Each seed is one ``python -m zoo task=TASK seed=S`` run (the task's defaults, then the overrides after ``--``) in
``OUT/seed<S>``, ``threads=1`` when ``--jobs`` is above 1 (one process per core). A seed whose run directory already
holds ``metrics.json`` is not run again, so a killed benchmark continues. The table has one row per seed (the searched
and the baseline's test metrics, their parameters, search and retraining seconds, the whole run's wall time) and the
mean and standard deviation over seeds of each metric and of the searched model's lead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean, stdev

ROOT = Path(__file__).resolve().parent.parent
# per task: (label, metrics.json key of the searched model, key of the baseline)
METRICS = {
    "detection": [("mAP@0.5", "test_mAP50", "test_mAP50_baseline"), ("COCO mAP", "test_mAP", "test_mAP_baseline")],
    "segmentation": [("mIoU", "test_mIoU", "test_mIoU_baseline"), ("pixel acc.", "test_pixel_accuracy", "test_pixel_accuracy_baseline")],
}


def run_seed(task: str, seed: int, out: Path, overrides: list[str], threads: int) -> Path:
    run = out / f"seed{seed}"
    if (run / "metrics.json").is_file():
        return run
    t0 = time.time()
    cmd = [sys.executable, "-m", "zoo", f"task={task}", f"seed={seed}", f"threads={threads}", "progress=false", *overrides]
    with open(out / f"seed{seed}.log", "w") as log:
        proc = subprocess.run(
            [*cmd, f"hydra.run.dir={run}", f"resume={str(run.is_dir()).lower()}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        raise SystemExit(f"scenes_table: seed {seed} failed (exit {proc.returncode}); see {out / f'seed{seed}.log'}")
    (out / f"seed{seed}.time").write_text(f"{time.time() - t0:.0f}\n")
    return run


def spread(xs: list[float], scale: float) -> str:
    return f"{scale * mean(xs):.1f} ± {scale * stdev(xs):.1f}" if len(xs) > 1 else f"{scale * xs[0]:.1f}"


def table(task: str, runs: list[Path]) -> str:
    metrics = METRICS[task]
    head = ["seed", *(f"searched {m}" for m, _, _ in metrics), *(f"hand-made {m}" for m, _, _ in metrics)]
    head += ["params searched / hand-made", "search s", "retrain s (searched + hand-made)", "run wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cols: dict[str, list[float]] = {}
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        wall = run.with_name(run.name + ".time")
        cells = [json.loads((run / "run_config.json").read_text())["seed"]]
        cells += [f"{100 * m[s]:.1f}" for _, s, _ in metrics] + [f"{100 * m[b]:.1f}" for _, _, b in metrics]
        cells += [f"{m['params']:,} / {m['params_baseline']:,}", f"{m['search_seconds']:.0f}", f"{m['retrain_seconds']:.0f}"]
        cells += [wall.read_text().strip() if wall.is_file() else "-"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        for label, s, b in metrics:
            cols.setdefault(f"searched {label}", []).append(m[s])
            cols.setdefault(f"hand-made {label}", []).append(m[b])
            cols.setdefault(f"searched - hand-made {label}", []).append(m[s] - m[b])
    summary = ", ".join(f"{k} {spread(v, 100)}" for k, v in cols.items())
    return "\n".join(lines) + f"\n\nMean ± standard deviation over {len(runs)} seeds (points): {summary}.\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=sorted(METRICS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--table", type=Path, help="also write the Markdown table here")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    threads = 1 if args.jobs > 1 else 2
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda s: run_seed(args.task, s, args.out, extra, threads), seeds))
    text = f"`python bench/scenes_table.py {' '.join(sys.argv[1:])}`\n\n" + table(args.task, runs)
    print(text)
    if args.table:
        args.table.write_text(text)


if __name__ == "__main__":
    main()
