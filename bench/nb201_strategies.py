"""Benchmark of every multi-trial search strategy on NAS-Bench-201 (CIFAR-10).

Each strategy runs N independent seeds with a budget of B table queries (reward: the
12-epoch validation accuracy); the result of a run is the 200-epoch CIFAR-10 test accuracy
of the architecture it returns (the best reward seen). Reports mean +- std over seeds, the
anytime curve (200-epoch test accuracy of the incumbent after each query, averaged over
seeds) as a plot, and the strategy's own time per ask+tell with 100 observations.

    python bench/nb201_strategies.py                       # all strategies, 100 seeds
    python bench/nb201_strategies.py --seeds 20 --strategies evolution,bo_gp
    python bench/nb201_strategies.py --write bench/RESULTS_strategies.md

Hyper-parameters are each strategy's conf/search/NAME.yaml defaults. One process, one thread.
The tables are the zoo's ``nb201`` entry (shipped with the package, fetched into the zoo cache on
first use), or ``--root DIR``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from tqdm import tqdm  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.estimate.nb201 import NB201Estimator  # noqa: E402
from zoo.search.base import STRATEGIES, Strategy  # noqa: E402
from zoo.space.nb201 import NB201Space  # noqa: E402

ANCHORS = {  # NAS-Bench-201 paper (Dong & Yang, ICLR 2020), CIFAR-10 test, its own time budget
    "random": "93.70 +- 0.36",
    "reinforce": "93.85 +- 0.37",
    "evolution": "~93.9 (REA)",
    "optimum": "94.37",
}
RESERVED = {"name", "budget", "objectives", "time_budget"}
NOTES = (
    "Notes: seeds 0..N-1 per strategy; hyper-parameters are the conf/search/NAME.yaml defaults (for evolution, ga, es, "
    "bo_gp, bo_rf chosen with small grids on seeds 1000..1099; evolution's first grid also ran on seeds 0..99). The published anchors come from the NAS-Bench-201 paper's own protocol (a simulated time budget, "
    "not exactly 100 queries), so they are context, not a like-for-like target. 'optimum' is the best 200-epoch test "
    "accuracy of any cell; the cell with the best 12-epoch validation accuracy (index 13714) reaches it."
)


def multi_trial_names() -> list[str]:
    return [n for n, cls in STRATEGIES.items() if isinstance(cls, type) and issubclass(cls, Strategy)]


def hparams(name: str) -> dict[str, Any]:
    path = REPO / "zoo" / "conf" / "search" / f"{name}.yaml"
    if not path.exists():
        return {}
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return {k: v for k, v in cfg.items() if k not in RESERVED}  # type: ignore[union-attr]


def make(name: str, space: Any, budget: int, seed: int) -> Strategy:
    return STRATEGIES.get(name)(space, budget=budget, seed=seed, **hparams(name))


def run_once(name: str, space: Any, est: NB201Estimator, test200: np.ndarray, budget: int, seed: int) -> tuple[float, np.ndarray]:
    """Returns (final 200-ep test acc of the returned cell, anytime curve of length budget)."""
    s = make(name, space, budget, seed)
    curve = np.empty(budget)
    best_r, best_t = -np.inf, np.nan
    q = 0
    while not s.done:
        for g in s.ask(1):
            r = est(g)
            s.tell(g, r)
            if r["reward"] > best_r:
                best_r, best_t = r["reward"], test200[r["nb201_index"]]
            curve[q] = best_t
            q += 1
    final = test200[est.index_of(s.best()[0])]
    return float(final), curve


def overhead_ms(name: str, space: Any, est: NB201Estimator, at: int = 100, reps: int = 10, seed: int = 12345) -> float:
    """Median wall time (ms) of one ask + tell once ``at`` observations were told (table look-up excluded)."""
    s = make(name, space, at + reps, seed)
    times = []
    while not s.done:
        t0 = time.perf_counter()
        g = s.ask(1)[0]
        t_ask = time.perf_counter() - t0
        r = est(g)
        t0 = time.perf_counter()
        s.tell(g, r)
        if s.n_told > at:
            times.append(t_ask + time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--strategies", default="all", help="comma-separated names, or 'all' multi-trial strategies")
    ap.add_argument(
        "--root",
        default=None,
        help="NAS-Bench-201 tables (default: as estimate=nb201, $ZOO_NB201_ROOT or the zoo's nb201 entry in the cache)",
    )
    ap.add_argument("--plot", default=str(REPO / "bench" / "nb201_anytime.png"))
    ap.add_argument("--write", default=None, help="also write the markdown table to this file")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    names = multi_trial_names() if a.strategies == "all" else a.strategies.split(",")
    space = NB201Space()
    est = NB201Estimator(OmegaConf.create({"root": a.root, "dataset": "cifar10", "latency_device": "gold_6240"}))
    test200 = est.tables.acc["CIFAR10TestAccuracy200Epochs"]
    rows, curves = [], {}
    for name in names:
        t0 = time.time()
        finals, cs = [], []
        for seed in tqdm(range(a.seeds), desc=name, disable=a.no_progress, leave=False):
            f, c = run_once(name, space, est, test200, a.budget, seed)
            finals.append(f)
            cs.append(c)
        curves[name] = np.mean(cs, 0)
        ov = overhead_ms(name, space, est)
        x = np.array(finals)
        rows.append((name, x.mean(), x.std(), np.median(x), ov, time.time() - t0))
        print(
            f"{name:<12} {x.mean():.2f} +- {x.std():.2f}  (median {np.median(x):.2f})  overhead {ov:.2f} ms/ask  [{time.time() - t0:.0f}s]",
            flush=True,
        )

    cmd = "python bench/nb201_strategies.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"NAS-Bench-201, CIFAR-10: {a.seeds} seeds x {a.budget} queries per strategy; reward = 12-epoch validation accuracy; "
        "result = 200-epoch test accuracy (%) of the returned cell. Overhead = the strategy's own median ms per ask+tell at 100 observations (1 thread).",
        "",
        "| strategy | test acc (200 ep), mean +- std | median | overhead ms/ask | published anchor |",
        "|---|---|---|---|---|",
    ]
    for name, m, sd, med, ov, _ in rows:
        lines.append(f"| {name} | {m:.2f} +- {sd:.2f} | {med:.2f} | {ov:.2f} | {ANCHORS.get(name, '')} |")
    lines.append(f"| optimum (best cell in the table) | {test200.max():.2f} | | | {ANCHORS['optimum']} |")
    lines += ["", f"Command: `{cmd.strip()}`"]
    table = "\n".join(lines)
    print("\n" + table)
    plot_anytime(curves, a.plot, a.seeds, float(test200.max()))
    if a.write:
        Path(a.write).write_text(f"# NAS-Bench-201 strategy benchmark\n\n{table}\n\n{NOTES}\n\nAnytime curve: `{Path(a.plot).name}`\n")
    return 0


def plot_anytime(curves: dict[str, np.ndarray], path: str, seeds: int, optimum: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, lw=1.6, label=name)
    ax.axhline(optimum, color="k", ls=":", lw=1, label=f"optimum {optimum:.2f}")
    ax.axhline(93.70, color="0.5", ls="--", lw=1, label="published random 93.70")
    ax.set_ylim(92.5, optimum + 0.1)
    ax.set_xlabel("queries (12-epoch validation accuracy look-ups)")
    ax.set_ylabel("200-epoch test acc. of incumbent (%)")
    ax.set_title(f"NAS-Bench-201 CIFAR-10, mean over {seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
