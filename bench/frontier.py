"""The scoreboard: searched and hand-made fronts at several sizes over several seeds, for one task.

    .venv/bin/python bench/frontier.py classification --sizes 20k,80k,320k --seeds 0,1,2 --jobs 2 \\
        --out runs/frontier -- search=random search.budget=6 data=fashion_mnist trainer.epochs=5

Runs ``python -m zoo task=TASK family.params=[SIZES] seed=S threads=1 [overrides]`` once per seed (``--jobs``
at a time, one thread each), then prints a markdown table: per size, the searched and the same-size
hand-made model's test score (mean +- standard deviation over the seeds), their parameters and the searched
model's lead, with the command; ``--plot`` draws both fronts with their spread. A finished seed's run
directory is reused (its ``metrics.json``); a killed one resumes (``resume=true``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean, stdev

ROOT = Path(__file__).resolve().parent.parent


def run_seed(task: str, sizes: str, seed: int, out: Path, overrides: list[str]) -> Path:
    d = out / f"{task}-seed{seed}"
    if (d / "metrics.json").is_file():
        return d
    cmd = [sys.executable, "-m", "zoo", f"task={task}", f"family.params=[{sizes}]", f"seed={seed}", "threads=1", "progress=false"]
    cmd += [*overrides, f"hydra.run.dir={d}"]
    if (d / "run_config.json").is_file():
        cmd.append("resume=true")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(out / f"{task}-seed{seed}.log", "w") as log:
        done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise SystemExit(f"seed {seed} failed (exit {done.returncode}); see {out / f'{task}-seed{seed}.log'}")
    return d


def _ms(xs: list[float]) -> str:
    return f"{mean(xs):.4f} ± {stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"


def table(runs: list[Path]) -> tuple[str, dict[str, dict[str, list[float]]]]:
    by: dict[str, dict[str, list[float]]] = {}
    for d in runs:
        for r in json.loads((d / "metrics.json").read_text())["members"]:
            b = r.get("baseline") or {}
            cell = by.setdefault(r["label"], {"searched": [], "baseline": [], "params": [], "params_baseline": [], "lead": []})
            cell["searched"].append(float(r["score"]))
            cell["baseline"].append(float(b.get("score", float("nan"))))
            cell["params"].append(float(r["params"]))
            cell["params_baseline"].append(float(b.get("params", float("nan"))))
            cell["lead"].append(float(r["score"]) - float(b.get("score", float("nan"))))
    lines = [
        "| size | searched score (mean ± std) | hand-made score | searched − hand-made | searched params (mean) | hand-made params (mean) | seeds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, c in by.items():
        lines.append(
            f"| {label} | {_ms(c['searched'])} | {_ms(c['baseline'])} | {mean(c['lead']):+.4f} | {mean(c['params']):,.0f} | "
            f"{mean(c['params_baseline']):,.0f} | {len(c['searched'])} |"
        )
    return "\n".join(lines), by


def plot(by: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for key, params, marker, style, name in (
        ("searched", "params", "o", "-", "searched"),
        ("baseline", "params_baseline", "s", "--", "hand-made"),
    ):
        xs = [mean(c[params]) for c in by.values()]
        ys = [mean(c[key]) for c in by.values()]
        es = [stdev(c[key]) if len(c[key]) > 1 else 0.0 for c in by.values()]
        ax.errorbar(xs, ys, yerr=es, fmt=style, marker=marker, capsize=3, label=name)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("test score (mean ± std over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("--sizes", default="50k,200k,800k", help="comma-separated parameter targets")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at once, one thread each")
    ap.add_argument("--out", default="runs/frontier", help="where the seeds' run directories go")
    ap.add_argument("--plot", default=None, help="also draw the fronts to this PNG")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.overrides = argv[cut + 1 :]  # zoo overrides for every seed, after --
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda s: run_seed(args.task, args.sizes, s, out, args.overrides), seeds))
    text, by = table(runs)
    print(text)
    print()
    print(f"Command: `python bench/frontier.py {' '.join(sys.argv[1:])}`")
    if args.plot:
        plot(by, Path(args.plot), f"{args.task}: searched vs hand-made ({len(seeds)} seeds)")


if __name__ == "__main__":
    main()
