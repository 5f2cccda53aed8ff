"""Pictures people would rather look at than read: the search curve and the found cell."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

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


def _draw_cell(ax: Any, edges: Sequence[tuple[str, int]], concat: Sequence[int], title: str) -> None:
    steps = len(edges) // 2
    pos: dict[int, tuple[float, float]] = {0: (0.0, 0.75), 1: (0.0, 0.25)}
    for i in range(steps):
        pos[i + 2] = (1.0 + i, 0.5 + (0.3 if i % 2 else -0.3) * (1 if i < steps - 1 else 0.2))
    out = (steps + 1.2, 0.5)
    names = {0: "c_{k-2}", 1: "c_{k-1}"}
    for k, (op, src) in enumerate(edges):
        dst = k // 2 + 2
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        rad = 0.25 if (k % 2) else -0.25
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="-|>", color="tab:blue", lw=1.2, connectionstyle=f"arc3,rad={rad}", shrinkA=12, shrinkB=12))
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + rad * 0.25 * (1 if x1 >= x0 else -1)
        ax.text(mx, my, op, fontsize=6.5, ha="center", va="center", bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for c in concat:
        (x0, y0) = pos[c]
        ax.annotate("", xy=out, xytext=(x0, y0), arrowprops=dict(arrowstyle="-|>", color="0.6", lw=0.8, shrinkA=12, shrinkB=12))
    for node, (x, y) in pos.items():
        ax.text(x, y, f"${names[node]}$" if node in names else str(node - 2), ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="circle" if node >= 2 else "round", fc="#cfe3f7" if node < 2 else "#fde9c9", ec="0.3"))
    ax.text(*out, "$c_{k}$", ha="center", va="center", fontsize=8, bbox=dict(boxstyle="round", fc="#d9f2d9", ec="0.3"))
    ax.set_xlim(-0.5, steps + 1.7)
    ax.set_ylim(-0.1, 1.1)
    ax.set_title(title)
    ax.axis("off")


def plot_genotype(genotype: Any, path: str | Path) -> None:
    """Draws a DARTS genotype's normal and reduction cells; other genotypes as text."""
    if hasattr(genotype, "normal") and hasattr(genotype, "reduce"):
        fig, axes = plt.subplots(2, 1, figsize=(8, 6), dpi=110)
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
