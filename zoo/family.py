"""Model families: one search, then the best network at each of several sizes (or latencies), each retrained
beside the hand-made model of the same size, and the front of the two drawn.

``family.params=[50k,200k,800k]`` (or ``family.latency_ms=[1,3,10]``) runs the search once, without a
constraint, as Once-for-All (Cai et al., ICLR 2020) trains one supernet for many budgets. Then, for each
target in increasing order, it takes the best architecture under that constraint and fits its width to it
(:func:`zoo.constraints.fit_width`): a multi-trial search's best-rewarded candidate that fits the target at
some width (every evaluated candidate is a choice), a one-shot search's derived genotype (the same cell for
every member: the supernet does not weigh cost yet). Each member is retrained and written as a run of its
own under ``members/<label>/`` (bundle, ``metrics.json`` with the same-size baseline's results beside it);
the family run writes ``frontier.json`` and ``frontier.png`` (score against parameters and against latency,
searched and hand-made, points labelled) and a ``metrics.json`` holding the table. A killed family run
resumed with ``resume=true`` skips the search's finished work as any run does, skips the members whose
``metrics.json`` is written, and continues the member it was retraining from its epoch checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.atomic import save_json_atomic
from zoo.config_values import ConfigError
from zoo.constraints import FAMILY_KINDS, Family

MEMBERS = "members"


def member_config(cfg: DictConfig, family: Family, target: float) -> DictConfig:
    """The config a member runs with: the family's constraint for it, no family."""
    out = copy.deepcopy(cfg)
    OmegaConf.set_struct(out, False)
    out.family = {k: None for k in FAMILY_KINDS}
    out.constraints = {"params": None, "flops": None, "latency_ms": None, **family.constraint(target)}
    return out


def choose(run: Any, family: Family, target: float, one_shot_genotype: Any) -> Any:
    """The architecture of the member at ``target``: the best-rewarded evaluated candidate that some width fits
    (multi-trial), else the one-shot search's genotype."""
    from zoo.constraints import Constraints, fits_at_some_width

    if run.strategy is None or not hasattr(run.strategy, "successes"):
        return one_shot_genotype
    constraints = Constraints(**family.constraint(target))
    ranked = sorted(run.strategy.successes(), key=lambda h: h[1]["reward"], reverse=True)
    for genotype, _ in ranked:
        if fits_at_some_width(run.task, genotype, constraints):  # its width is fitted once, by finish
            return genotype
    raise ConfigError(f"family.{family.kind}: no evaluated candidate fits {family.kind}={target:g} at any width; allowed: larger targets")


def measure_latencies(run: Any, member_dir: Path) -> dict[str, float]:
    """Latency (ms, the run's device) of the member's shipped model and of its same-size baseline."""
    from torch import nn

    from zoo.estimate.latency import measure_latency_ms
    from zoo.hub.bundle import load_bundle

    model, _ = load_bundle(member_dir)
    example = run.task.example_input()
    out = {"latency_ms": round(measure_latency_ms(model, example, device=run.task.device), 4)}
    base = getattr(run.task, "trained_baseline", None)  # the baseline this member's retraining trained beside it
    if isinstance(base, nn.Module):
        out["latency_ms_baseline"] = round(measure_latency_ms(base, example, device=run.task.device), 4)
    return out


def run_family(cfg: DictConfig, run_dir: Path, family: Family) -> dict[str, Any]:
    """One search, then every member (see the module docstring); returns the family's ``metrics.json``."""
    import torch

    from zoo.pipeline import finish, search, search_seconds, start
    from zoo.rundir import config_digest, finished_metrics

    done = finished_metrics(cfg, run_dir) if cfg.resume else None
    if done is not None:  # resume=true on a finished family: its table, nothing else
        print(family_summary(done, run_dir), flush=True)
        return done
    run = start(cfg, run_dir)  # also refuses a family no architecture's smallest width can reach
    found = search(run)
    rows = []
    for target in family.targets:
        label = family.label(target)
        d = run_dir / MEMBERS / label
        done = d / "metrics.json"
        genotype = choose(run, family, target, found)
        before = json.loads(done.read_text()) if cfg.resume and done.is_file() else None
        if before is not None and before.get("genotype") == genotype.to_json():
            metrics = before
        else:
            if d.exists() and (before is not None or not cfg.resume or _chose_other(d, genotype)):
                shutil.rmtree(d)  # a member of another architecture (the search grew on resume): retrained from scratch
            d.mkdir(parents=True, exist_ok=True)
            run.task.width_overrides = {}
            member = dataclasses.replace(run, cfg=member_config(cfg, family, target), run_dir=d, search_checkpoint=None)
            torch.manual_seed(int(cfg.seed))
            metrics = finish(member, genotype)
            metrics.update(measure_latencies(run, d))
            if family.kind == "latency_ms":  # the latency the width was fitted with, which the constraint judged
                metrics["latency_ms"] = metrics["constraints"]["latency_ms"]["final"]
            save_json_atomic(done, metrics)
        rows.append(_row(label, family, target, metrics))
        print(f"  family member {label}: params {metrics['params']:,}, score {metrics.get('score')}", file=sys.stderr, flush=True)
    run.task.width_overrides = {}
    from zoo.plots import plot_frontier

    plot_frontier(rows, run_dir / "frontier.png", title=f"{cfg.task.name} {cfg.search.name}: searched vs hand-made")
    save_json_atomic(run_dir / "frontier.json", rows)
    out = {
        "task": cfg.task.name,
        "search": cfg.search.name,
        "family": {"kind": family.kind, "targets": list(family.targets)},
        "members": rows,
        "search_seconds": search_seconds(run),
        "config_sha256": config_digest(cfg),
    }
    save_json_atomic(run_dir / "metrics.json", out)
    if run.search_checkpoint is not None:
        run.search_checkpoint.remove()
    print(family_summary(out, run_dir), flush=True)
    return out


def _chose_other(member_dir: Path, genotype: Any) -> bool:
    """Whether the member's directory holds the fit of another architecture (``final_size.json``)."""
    path = member_dir / "final_size.json"
    return path.is_file() and json.loads(path.read_text()).get("genotype") != genotype.to_json()


def _row(label: str, family: Family, target: float, m: dict[str, Any]) -> dict[str, Any]:
    base = m.get("baseline") if isinstance(m.get("baseline"), dict) else {}
    return {
        "label": label,
        "target": {family.kind: family.constraint(target)[family.kind]},
        "genotype": m["genotype"],
        "widths": m.get("final_widths", {}),
        "params": m["params"],
        "latency_ms": m.get("latency_ms"),
        "score": m.get("score"),
        "baseline": {
            "model": base.get("model"),
            "params": base.get("params"),
            "latency_ms": m.get("latency_ms_baseline"),
            "score": m.get("score_baseline"),
        }
        if base
        else None,
        "searched_minus_baseline": (m["score"] - m["score_baseline"]) if "score_baseline" in m and m.get("score") is not None else None,
    }


def family_summary(metrics: dict[str, Any], run_dir: Path) -> str:
    """The family's table: per member its size, latency and score beside the hand-made model's."""
    lines = ["", f"zoo family finished -> {run_dir}", f"  task {metrics['task']}    search {metrics['search']}"]
    lines.append(f"  {'member':<16}{'params':>10}{'ms':>9}{'score':>9}   {'baseline params':>15}{'ms':>9}{'score':>9}{'lead':>9}")
    for r in metrics["members"]:
        b = r.get("baseline") or {}

        def num(v: Any, fmt: str) -> str:
            return format(v, fmt) if isinstance(v, (int, float)) else "-"

        lines.append(
            f"  {r['label']:<16}{num(r['params'], ','):>10}{num(r['latency_ms'], '.2f'):>9}{num(r['score'], '.4f'):>9}   "
            f"{num(b.get('params'), ','):>15}{num(b.get('latency_ms'), '.2f'):>9}{num(b.get('score'), '.4f'):>9}"
            f"{num(r.get('searched_minus_baseline'), '+.4f'):>9}"
        )
    lines.append("  files     frontier.png, frontier.json, metrics.json, members/<member>/ (bundle, metrics.json)")
    return "\n".join(lines)
