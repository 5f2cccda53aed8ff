"""Pictures people would rather look at than read: the search curve and the found cell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_search_curve(rewards: Sequence[float], path: str | Path, xlabel: str = "trial", title: str = "search") -> None:
    """Reward of each trial (dots) and the best so far (line)."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    xs = list(range(1, len(rewards) + 1))
    best, cur = [], float("-inf")
    for r in rewards:
        cur = max(cur, r)
        best.append(cur)
    ax.plot(xs, rewards, "o", ms=3, alpha=0.5, label="reward")
    ax.plot(xs, best, "-", lw=2, label="best so far")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_frontier(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "searched vs hand-made") -> None:
    """Score against parameters and against latency for a family's members (searched, circles) and their same-size
    hand-made baselines (squares), each point labelled with its member."""
    panels = [("params", "parameters")] + ([("latency_ms", "latency (ms)")] if any(r.get("latency_ms") is not None for r in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), dpi=110, squeeze=False)
    for ax, (key, xlabel) in zip(axes[0], panels):
        for who, marker, style in (("searched", "o", "-"), ("hand-made", "s", "--")):
            pts = []
            for r in rows:
                src = r if who == "searched" else (r.get("baseline") or {})
                if src.get(key) is not None and src.get("score") is not None:
                    pts.append((float(src[key]), float(src["score"]), r["label"]))
            if not pts:
                continue
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=marker, label=who)
            for x, y, label in pts:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4 if who == "searched" else -10), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # crowded on a short log axis
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test score")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bezier(p0: tuple[float, float], p2: tuple[float, float], offset: float) -> tuple[list[float], list[float]]:
    """Quadratic Bezier from p0 to p2 whose middle is pushed sideways by ``offset`` (data units)."""
    (x0, y0), (x2, y2) = p0, p2
    length = max(((x2 - x0) ** 2 + (y2 - y0) ** 2) ** 0.5, 1e-9)
    # the control point sits 2x the wanted mid-curve offset from the chord's middle
    cx, cy = (x0 + x2) / 2 - 2 * offset * (y2 - y0) / length, (y0 + y2) / 2 + 2 * offset * (x2 - x0) / length
    ts = [k / 80 for k in range(81)]
    xs = [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x2 for t in ts]
    ys = [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y2 for t in ts]
    return xs, ys


def _trim(xs: list[float], ys: list[float], r0: float, r1: float) -> tuple[list[float], list[float]]:
    """Drops the points within ``r0`` of the start and ``r1`` of the end (the node markers)."""
    keep = [
        k
        for k, (x, y) in enumerate(zip(xs, ys))
        if ((x - xs[0]) ** 2 + (y - ys[0]) ** 2) ** 0.5 >= r0 and ((x - xs[-1]) ** 2 + (y - ys[-1]) ** 2) ** 0.5 >= r1
    ]
    return [xs[k] for k in keep], [ys[k] for k in keep]


def _free_spot(xs: list[float], ys: list[float], preferred: int, text: str, placed: list[tuple[float, float, float, float]]) -> int:
    """The curve point nearest ``preferred`` where a label of ``text`` overlaps no placed box
    (boxes are centre x, y and half-width, half-height in data units); the preferred one if none is free."""
    half_w, half_h = 0.032 * len(text) + 0.05, 0.075
    lo, hi = len(xs) // 8, len(xs) - 1 - len(xs) // 8
    order = sorted(range(lo, hi + 1), key=lambda i: abs(i - preferred))
    for i in order:
        if all(abs(xs[i] - x) > half_w + w or abs(ys[i] - y) > half_h + h for x, y, w, h in placed):
            placed.append((xs[i], ys[i], half_w, half_h))
            return i
    placed.append((xs[preferred], ys[preferred], half_w, half_h))
    return preferred


def _draw_cell(ax: Any, edges: Sequence[tuple[str, int]], concat: Sequence[int], title: str) -> None:
    """A DARTS cell left to right: inputs, intermediate nodes on alternating rows, output.

    Each edge ends with its arrow on the node's rim; its op label sits on the curve near the
    node it feeds, the two inputs of a node bent to opposite sides so their labels separate.
    """
    steps = len(edges) // 2
    pos: dict[int, tuple[float, float]] = {0: (0.0, 1.5), 1: (0.0, 0.1)}
    for i in range(steps):
        pos[i + 2] = (1.7 * (i + 1), 0.8 + (0.42 if i % 2 else -0.42))
    out = (1.7 * (steps + 1), 0.8)
    ops = sorted({op for op, _ in edges})
    colors = {op: plt.get_cmap("tab10")(k % 10) for k, op in enumerate(ops)}
    placed: list[tuple[float, float, float, float]] = [(x, y, 0.25, 0.16) for x, y in pos.values()]  # label boxes and nodes
    for k, (op, src) in enumerate(edges):
        dst = k // 2 + 2
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        side = 1.0 if (k % 2 == 0) == (y0 <= y1) else -1.0  # the two inputs of a node bend apart
        xs, ys = _trim(*_bezier(pos[src], pos[dst], side * 0.22), 0.2 if src < 2 else 0.15, 0.17)
        ax.plot(xs[:-1], ys[:-1], color=colors[op], lw=1.8, zorder=1, solid_capstyle="round")
        ax.annotate(
            "",
            xy=(xs[-1], ys[-1]),
            xytext=(xs[-4], ys[-4]),
            arrowprops=dict(arrowstyle="-|>,head_length=0.5,head_width=0.25", color=colors[op], lw=1.8),
            zorder=2,
        )
        preferred = max(0, len(xs) - 1 - int(min(0.55, 0.9 / max(abs(x1 - x0), 0.5)) * (len(xs) - 1)))  # ~0.9 units before the node
        at = _free_spot(xs, ys, preferred, op, placed)
        ax.text(
            xs[at],
            ys[at],
            op,
            fontsize=7,
            color=colors[op],
            ha="center",
            va="center",
            zorder=3,
            bbox=dict(boxstyle="round,pad=0.12", fc="white", ec=colors[op], lw=0.6),
        )
    for c in concat:
        xs, ys = _trim(*_bezier(pos[c], out, 0.0), 0.15, 0.2)
        ax.plot(xs, ys, color="0.65", lw=0.9, ls="--", zorder=0)
    names = {0: "$c_{k-2}$", 1: "$c_{k-1}$"}
    for node, (x, y) in pos.items():
        ax.text(
            x,
            y,
            names.get(node, str(node - 2)),
            ha="center",
            va="center",
            fontsize=9,
            zorder=4,
            bbox=dict(boxstyle="round" if node < 2 else "circle", fc="#cfe3f7" if node < 2 else "#fde9c9", ec="0.3"),
        )
    ax.text(*out, "$c_{k}$", ha="center", va="center", fontsize=9, zorder=4, bbox=dict(boxstyle="round", fc="#d9f2d9", ec="0.3"))
    ax.set_xlim(-0.5, out[0] + 0.5)
    ax.set_ylim(-0.45, 2.05)
    ax.set_title(title)
    ax.axis("off")


def draw_cell(ax: Any, edges: Sequence[tuple[str, int]], concat: Sequence[int], title: str) -> None:
    """Draws one DARTS-style cell (``(op, input)`` pairs, two per node) on ``ax``; for genotypes that hold such a cell."""
    _draw_cell(ax, edges, concat, title)


def plot_genotype(genotype: Any, path: str | Path) -> None:
    """Draws a DARTS genotype's normal and reduction cells; other genotypes as text."""
    if hasattr(genotype, "normal") and hasattr(genotype, "reduce"):
        fig, axes = plt.subplots(2, 1, figsize=(9, 7), dpi=110)
        _draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell")
        _draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")
    elif hasattr(genotype, "draw"):
        fig = genotype.draw()
    else:
        fig, ax = plt.subplots(figsize=(8, 2), dpi=110)
        ax.text(0.5, 0.5, str(genotype), ha="center", va="center", fontsize=8, wrap=True)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
