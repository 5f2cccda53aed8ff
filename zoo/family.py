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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.atomic import save_json_atomic
from zoo.config_values import ConfigError, count_value

KINDS = {
    "params": "a non-empty list of positive counts such as [50k, 200k, 800k]",
    "latency_ms": "a non-empty list of numbers > 0 such as [1, 3, 10]",
}
MEMBERS = "members"


@dataclass(frozen=True)
class Family:
    """The constraint kind a family varies (``params`` or ``latency_ms``) and its targets, smallest first."""

    kind: str
    targets: tuple[float, ...]

    @classmethod
    def from_cfg(cls, cfg: Any) -> Family | None:
        """The run's family, ``None`` without one; one-line :class:`ConfigError` for a bad one."""
        node = cfg.get("family")
        if node is None:
            return None
        given = {k: node.get(k) for k in KINDS if node.get(k) is not None}
        if not given:
            return None
        if len(given) > 1:
            raise ConfigError(f"family.params and family.latency_ms are both set ({given}); allowed: one of them")
        kind, value = next(iter(given.items()))
        raw = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        items = raw if isinstance(raw, (list, tuple)) else None
        parsed = [_target(kind, v) for v in items] if items else None
        if not parsed or any(v is None for v in parsed) or len(set(parsed)) != len(parsed):
            raise ConfigError(f"family.{kind}={raw!r} is invalid; allowed: {KINDS[kind]}, each once")
        constrained = {k: v for k, v in (cfg.get("constraints") or {}).items() if v is not None}
        if constrained:
            raise ConfigError(
                f"family.{kind} is invalid with constraints ({', '.join(f'constraints.{k}={v}' for k, v in constrained.items())}): "
                "a family sets one constraint per member; allowed: one of them"
            )
        return cls(kind, tuple(sorted(float(v) for v in parsed)))  # type: ignore[arg-type]

    def label(self, target: float) -> str:
        """The member's directory name: ``params-200k``, ``latency_ms-3``."""
        return f"{self.kind}-{_short(target) if self.kind == 'params' else f'{target:g}'}"

    def constraint(self, target: float) -> dict[str, Any]:
        return {self.kind: int(target) if self.kind == "params" else float(target)}


def _target(kind: str, v: Any) -> float | None:
    if kind == "params":
        n = count_value(v)
        return None if n is None else float(n)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def _short(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:g}{unit}"
    return f"{n:g}"


def member_config(cfg: DictConfig, family: Family, target: float) -> DictConfig:
    """The config a member runs with: the family's constraint for it, no family."""
    out = copy.deepcopy(cfg)
    OmegaConf.set_struct(out, False)
    out.family = {k: None for k in KINDS}
    out.constraints = {"params": None, "flops": None, "latency_ms": None, **family.constraint(target)}
    return out


def choose(run: Any, family: Family, target: float, one_shot_genotype: Any) -> Any:
    """The architecture of the member at ``target``: the best-rewarded evaluated candidate that some width fits
    (multi-trial), else the one-shot search's genotype."""
    from zoo.constraints import Constraints, fit_width

    if run.strategy is None or not hasattr(run.strategy, "successes"):
        return one_shot_genotype
    constraints = Constraints(**family.constraint(target))
    ranked = sorted(run.strategy.successes(), key=lambda h: h[1]["reward"], reverse=True)
    for genotype, _ in ranked:
        if fit_width(run.task, genotype, constraints).feasible:
            return genotype
    raise ConfigError(f"family.{family.kind}: no evaluated candidate fits {family.kind}={target:g} at any width; allowed: larger targets")


def measure_latencies(run: Any, member_dir: Path, metrics: dict[str, Any]) -> dict[str, float]:
    """Latency (ms, the run's device) of the member's shipped model and of its same-size baseline."""
    from torch import nn

    from zoo.estimate.latency import measure_latency_ms
    from zoo.hub.bundle import load_bundle

    model, _ = load_bundle(member_dir)
    example = run.task.example_input()
    out = {"latency_ms": round(measure_latency_ms(model, example, device=run.task.device), 4)}
    base = metrics.get("baseline")
    if isinstance(base, dict) and "params" in base and hasattr(run.task, "create_baseline"):
        made = run.task.create_baseline(int(metrics["params"]))
        if made is not None and isinstance(made[0], nn.Module):
            out["latency_ms_baseline"] = round(measure_latency_ms(made[0], example, device=run.task.device), 4)
    return out


def run_family(cfg: DictConfig, run_dir: Path, family: Family) -> dict[str, Any]:
    """One search, then every member (see the module docstring); returns the family's ``metrics.json``."""
    import torch

    from zoo.constraints import Constraints, check_reachable
    from zoo.pipeline import build, finish, search
    from zoo.rundir import config_digest, write_run_config

    run = build(cfg, run_dir)
    if run.task is None or run.estimator.tabular:
        raise ConfigError(
            f"family.{family.kind} is invalid with estimate={cfg.estimate.name}: it retrains nothing; allowed: estimate=train"
        )
    if not cfg.resume:
        check_reachable(run.task, run.space, Constraints(**family.constraint(family.targets[0])), int(cfg.seed))
    write_run_config(cfg, run_dir)
    torch.manual_seed(int(cfg.seed))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    found = search(run)
    rows = []
    for target in family.targets:
        label = family.label(target)
        d = run_dir / MEMBERS / label
        done = d / "metrics.json"
        if cfg.resume and done.is_file():
            metrics = json.loads(done.read_text())
        else:
            d.mkdir(parents=True, exist_ok=True)
            genotype = choose(run, family, target, found)
            run.task.width_overrides = {}
            member = dataclasses.replace(run, cfg=member_config(cfg, family, target), run_dir=d, search_checkpoint=None)
            torch.manual_seed(int(cfg.seed))
            metrics = finish(member, genotype)
            metrics.update(measure_latencies(run, d, metrics))
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
        "search_seconds": round(time.time() - run.started, 1),
        "config_sha256": config_digest(cfg),
    }
    save_json_atomic(run_dir / "metrics.json", out)
    if run.search_checkpoint is not None:
        run.search_checkpoint.remove()
    print(family_summary(out, run_dir), flush=True)
    return out


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
