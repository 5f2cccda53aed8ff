"""Markdown rows for BENCHMARKS.md from task=translation run directories (searched vs Transformer baseline).

    .venv/bin/python bench/translation_table.py outputs/translation-evolution/<time> ...   # one row per run, then the means

Reads each run's ``metrics.json`` (test BLEU and chrF with beam search and greedy, parameter counts,
search / retrain seconds) and ``run_config.json`` (seed, strategy); a ``<run>.time`` file beside a run
(``/usr/bin/time -f "%e s wall"``) gives the whole run's wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean


def row(run: Path) -> tuple[str, dict[str, float]]:
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "run_config.json").read_text())
    b = m.get("baseline") or {}
    wall_file = run.with_name(run.name + ".time")
    wall = float(wall_file.read_text().split()[0]) if wall_file.is_file() else None
    cells = [
        cfg["search.name"],
        str(cfg["seed"]),
        f"{m['test_bleu']:.2f} / {m['test_chrf']:.1f}",
        f"{m['test_bleu_greedy']:.2f}",
        f"{m['params']:,}",
        f"{b.get('bleu', float('nan')):.2f} / {b.get('chrf', float('nan')):.1f}",
        f"{b.get('bleu_greedy', float('nan')):.2f}",
        f"{b.get('params', 0):,}",
        f"{m.get('search_seconds', 0):.0f} s",
        f"{m.get('train_seconds', 0):.0f} s / {b.get('train_seconds', 0):.0f} s",
        f"{wall:.0f} s" if wall is not None else "-",
    ]
    nums = {
        "searched": m["test_bleu"],
        "baseline": b.get("bleu", float("nan")),
        "searched_chrf": m["test_chrf"],
        "baseline_chrf": b.get("chrf", float("nan")),
    }
    return "| " + " | ".join(cells) + " |", nums


def main(runs: list[str]) -> None:
    print(
        "| search | seed | searched BLEU / chrF (beam 4) | greedy BLEU | params | Transformer BLEU / chrF | greedy BLEU | "
        "Transformer params | search | train searched / baseline | whole run |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [row(Path(r)) for r in runs]
    for text, _ in rows:
        print(text)
    nums = [n for _, n in rows]
    print()
    for who in ("searched", "baseline"):
        print(f"mean {who}: BLEU {mean(n[who] for n in nums):.2f}, chrF {mean(n[f'{who}_chrf'] for n in nums):.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
