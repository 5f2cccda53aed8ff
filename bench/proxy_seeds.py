"""How far can any estimate rank? Two or more ``bench/proxy_rank.py`` runs of the same architectures with
different training seeds, side by side.

    .venv/bin/python bench/proxy_rank.py rl --out runs/proxy_rank/rl-seed1 -- data.env=MinAtar/Breakout-v1 seed=1
    .venv/bin/python bench/proxy_seeds.py runs/proxy_rank/rl/results.json runs/proxy_rank/rl-seed1/results.json

``bench/proxy_rank.py TASK --out DIR -- seed=S`` measures the same architectures for every ``S`` (they are drawn with
``--seed``, not with the training seed), so their ``results.json`` files pair up by genotype. This prints

* Kendall's tau between the retrained metrics of every two seeds: how well one retraining ranks the architectures
  as another does. It bounds what an estimate can reach against a single retraining: when two retrainings of the
  same architectures agree only at tau 0.3, an estimate at tau 0.5 against one of them is luck;
* each proxy of the runs (the search estimate, ``--early-curve`` cuts, parameters), averaged over the seeds,
  against the metric averaged over the seeds (a less noisy target than one retraining), and against each seed's.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from itertools import combinations
from pathlib import Path
from typing import Any, NoReturn


def die(msg: str) -> NoReturn:
    print(f"proxy_seeds: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        die(f"{path}: not a readable results.json of bench/proxy_rank.py ({e.__class__.__name__}: {e})")
    if "architectures" not in doc or "correlations" not in doc:
        die(f"{path}: not a results.json of bench/proxy_rank.py (no 'architectures' or 'correlations')")
    return doc


def seed_of(doc: dict[str, Any]) -> str:
    """The run's training seed: recorded in its results.json, else (older runs) its ``seed=`` override or the default 0."""
    if "seed" in doc:
        return str(doc["seed"])
    return next((o.partition("=")[2] for o in doc.get("overrides", []) if o.lstrip("+~").startswith("seed=")), "0")


NOT_RESULTS = ("seed=", "threads=", "progress=")  # options two runs may differ in: the seed, and ones that change no number


def other_options(doc: dict[str, Any]) -> list[str]:
    return sorted(o for o in doc.get("overrides", []) if not o.lstrip("+~").startswith(NOT_RESULTS))


def tau(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import kendalltau

    value = float(kendalltau(x, y)[0])
    return None if value != value else round(value, 3)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="results.json of bench/proxy_rank.py runs that differ in seed=")
    args = ap.parse_args(argv)
    if len(args.results) < 2:
        die(f"got {len(args.results)} results.json; allowed: two or more (runs of the same architectures with different seed=)")
    docs = [load(p) for p in args.results]
    tasks = {d["task"] for d in docs}
    if len(tasks) > 1:
        die(f"the runs are of different tasks ({', '.join(sorted(tasks))}); allowed: runs of one task")
    options = {tuple(other_options(d)) for d in docs}
    if len(options) > 1:
        die(
            f"the runs differ in more than seed= ({' vs '.join(' '.join(o) or '(none)' for o in sorted(options))}); allowed: runs that differ only in seed="
        )
    by_key = [{a["key"]: a for a in d["architectures"]} for d in docs]
    keys = [k for k in by_key[0] if all(k in b for b in by_key[1:])]
    if len(keys) < 3:
        die(f"only {len(keys)} architectures are in every run; a rank correlation needs 3 (same --seed and --n for every run?)")
    seeds = [seed_of(d) for d in docs]
    if len(set(seeds)) < len(seeds):
        die(f"the runs' training seeds repeat ({', '.join(seeds)}); allowed: runs that differ in seed=")
    metric = docs[0]["metric"]
    per_seed = [[b[k]["metric"] for k in keys] for b in by_key]
    mean_metric = {k: sum(v) / len(v) for k, v in zip(keys, zip(*per_seed))}
    lines = [
        f"### Ranking across training seeds: task={docs[0]['task']}, {len(keys)} architectures, metric {metric}, seeds {', '.join(seeds)}",
        "",
        f"| between | Kendall τ of {metric} |",
        "|---|---:|",
    ]
    for (i, a), (j, b) in combinations(enumerate(per_seed), 2):
        t = tau(a, b)
        lines.append(f"| retraining seed {seeds[i]} and seed {seeds[j]} | {'n/a' if t is None else f'{t:+.3f}'} |")
    proxies = {name: re.sub(r" \(\d+ of \d+ architectures\)$", "", c["label"]) for name, c in docs[0]["correlations"].items()}
    head = ["proxy (mean over the seeds)", f"τ vs mean {metric}", *(f"τ vs seed {s}" for s in seeds)]
    lines += ["", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, label in proxies.items():
        have = [k for k in keys if all(b[k].get(name) is not None for b in by_key)]
        if len(have) < 3:
            continue
        x = [sum(b[k][name] for b in by_key) / len(by_key) for k in have]
        cells = [tau(x, [mean_metric[k] for k in have])]
        cells += [tau(x, [b[k]["metric"] for k in have]) for b in by_key]
        note = f" ({len(have)} architectures)" if len(have) < len(keys) else ""
        lines.append(f"| {label}{note} | " + " | ".join("n/a" if c is None else f"{c:+.3f}" for c in cells) + " |")
    lines += ["", f"Command: `python bench/proxy_seeds.py {' '.join(str(p) for p in args.results)}`"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
