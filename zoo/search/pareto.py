"""Multi-objective search: objective names, non-dominated sorting, the Pareto front.

``search.objectives=[accuracy, latency]`` names what to trade off. Each name maps to a
key of the estimator's result dict and a direction; internally every objective is
turned "larger is better" (minimised objectives are negated).

* :func:`non_dominated_sort` and :func:`crowding_distance` follow NSGA-II
  (Deb et al., IEEE TEVC 2002);
* :func:`parego_scalarize` is ParEGO's augmented Chebyshev scalarisation
  (Knowles, IEEE TEVC 2006), used by the Bayesian-optimisation strategies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.atomic import save_json_atomic
from zoo.search.base import ConfigError
from zoo.space.genotype import genotype_key

OBJECTIVES: dict[str, tuple[str, float]] = {
    # name: (result key, +1 maximise / -1 minimise)
    "accuracy": ("reward", 1.0),
    "reward": ("reward", 1.0),
    "latency": ("latency_ms", -1.0),
    "params": ("params", -1.0),
    "flops": ("flops", -1.0),
}


def check_objectives(objectives: Sequence[str], strategy: str, multi_ok: bool = True) -> list[str]:
    """Validates ``search.objectives``; the first must be the accuracy/reward."""
    objs = [objectives] if isinstance(objectives, str) else list(objectives)
    if not objs or any(not isinstance(o, str) or o not in OBJECTIVES for o in objs):
        raise ConfigError(f"search.objectives={objs!r} is invalid; allowed: a list of {', '.join(OBJECTIVES)}")
    if len(set(OBJECTIVES[o][0] for o in objs)) != len(objs):
        raise ConfigError(f"search.objectives={objs!r} is invalid; allowed: each objective once")
    if OBJECTIVES[objs[0]][0] != "reward":
        raise ConfigError(f"search.objectives={objs!r} is invalid; allowed: accuracy first, e.g. [accuracy, latency]")
    if len(objs) > 1 and not multi_ok:
        raise ConfigError(f"search.objectives={objs!r} is invalid for search={strategy}; allowed: [accuracy] (single objective)")
    return objs


def check_estimator_objectives(objectives: Sequence[str], strategy: str, est_cls: type, est_name: str) -> None:
    """Fails before work when the estimator does not report an objective (``provides`` on the estimator class)."""
    objs = check_objectives(objectives, strategy)
    provides = set(getattr(est_cls, "provides", ("reward",)))
    for o in objs:
        if OBJECTIVES[o][0] not in provides:
            ok = [n for n, (k, _) in OBJECTIVES.items() if k in provides]
            raise ConfigError(f"search.objectives={objs!r}: estimate={est_name} does not report {o!r}; allowed with it: {', '.join(ok)}")


def is_multi(objectives: Sequence[str]) -> bool:
    return len(list(objectives)) > 1


def objective_matrix(results: Sequence[dict[str, Any]], objectives: Sequence[str]) -> np.ndarray:
    """(n, m) array of the objectives, each oriented so that larger is better."""
    F = np.empty((len(results), len(objectives)))
    for j, name in enumerate(objectives):
        key, sign = OBJECTIVES[name]
        for i, r in enumerate(results):
            if key not in r:
                raise ValueError(f"objective {name!r} needs {key!r} in the estimator's result; this estimator gives {', '.join(sorted(r))}")
            F[i, j] = sign * float(r[key])
    return F


def non_dominated_sort(F: np.ndarray) -> np.ndarray:
    """Front index of each row (0 = non-dominated), larger-is-better objectives."""
    n = len(F)
    rank = np.full(n, -1)
    if n == 0:
        return rank
    ge = (F[:, None, :] >= F[None, :, :]).all(-1)
    gt = (F[:, None, :] > F[None, :, :]).any(-1)
    dominates = ge & gt  # dominates[i, j]: i dominates j
    count = dominates.sum(0)
    front = np.flatnonzero(count == 0)
    k = 0
    while front.size:
        rank[front] = k
        count = count - dominates[front].sum(0)
        count[rank >= 0] = -1
        front = np.flatnonzero(count == 0)
        k += 1
    return rank


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one set of points (boundary points get inf)."""
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (F[order[2:], j] - F[order[:-2], j]) / span
    return d


def pareto_front(history: Sequence[tuple[Any, dict[str, Any]]], objectives: Sequence[str]) -> list[tuple[Any, dict[str, Any]]]:
    """The non-dominated (genotype, result) pairs of ``history``, one per genotype, best accuracy first."""
    uniq: dict[str, tuple[Any, dict[str, Any]]] = {}
    for g, r in history:
        uniq.setdefault(genotype_key(g), (g, r))
    items = list(uniq.values())
    if not items:
        return []
    F = objective_matrix([r for _, r in items], objectives)
    rank = non_dominated_sort(F)
    front = [items[i] for i in np.flatnonzero(rank == 0)]
    return sorted(front, key=lambda h: -float(h[1]["reward"]))


def parego_scalarize(F: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """Augmented Chebyshev scalarisation of larger-is-better objectives; larger is better."""
    lo, hi = F.min(0), F.max(0)
    cost = (hi - F) / np.where(hi > lo, hi - lo, 1.0)  # 0 = best observed, 1 = worst
    wc = cost * weights
    return -(wc.max(1) + rho * wc.sum(1))


def write_pareto(
    run_dir: str | Path,
    history: Sequence[tuple[Any, dict[str, Any]]],
    objectives: Sequence[str],
    describe: Callable[[Any], str] = str,
    final: Callable[[Any], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Writes ``pareto_front.json`` and ``pareto_front.png`` (first two objectives); returns the front's records.

    ``final`` (a tabular estimator's) adds each member's final ``test_*`` numbers.
    """
    run_dir = Path(run_dir)
    front = pareto_front(history, objectives)
    records = []
    for g, r in front:
        rec = {"genotype": g.to_json(), "describe": describe(g)}
        rec.update({name: r[OBJECTIVES[name][0]] for name in objectives})
        if final is not None:
            rec.update({k: v for k, v in final(g).items() if k.startswith("test_")})
        records.append(rec)
    save_json_atomic(run_dir / "pareto_front.json", {"objectives": list(objectives), "front": records})
    plot_pareto(history, front, objectives, run_dir / "pareto_front.png")
    return records


def plot_pareto(
    history: Sequence[tuple[Any, dict[str, Any]]], front: Sequence[tuple[Any, dict[str, Any]]], objectives: Sequence[str], path: str | Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_name, y_name = objectives[1], objectives[0]
    kx, ky = OBJECTIVES[x_name][0], OBJECTIVES[y_name][0]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([r[kx] for _, r in history], [r[ky] for _, r in history], "o", ms=3, color="0.7", label="evaluated")
    pts = sorted((r[kx], r[ky]) for _, r in front)
    ax.plot(
        [p[0] for p in pts],
        [p[1] for p in pts],
        "o-",
        ms=5,
        color="tab:red",
        drawstyle="steps-post" if OBJECTIVES[x_name][1] < 0 else "default",
        label=f"Pareto front ({len(pts)})",
    )
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    ax.set_title(f"Pareto front: {' vs '.join(objectives)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def front_summary(records: Sequence[dict[str, Any]], objectives: Sequence[str], limit: int = 10) -> list[str]:
    """A few text lines for the run summary."""
    lines = [f"  pareto    {len(records)} non-dominated architectures ({' vs '.join(objectives)}), written to pareto_front.json/.png"]
    for rec in records[:limit]:
        vals = "  ".join(
            f"{k}={rec[k]:.4g}" if isinstance(rec[k], float) else f"{k}={rec[k]}"
            for k in list(objectives) + [k for k in rec if k.startswith("test_")]
        )
        lines.append(f"    {vals}  {rec['describe']}")
    if len(records) > limit:
        lines.append(f"    ... {len(records) - limit} more in pareto_front.json")
    return lines
