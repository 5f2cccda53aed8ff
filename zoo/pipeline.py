"""One run: build the space, task, estimator and strategy from the config, search,
retrain the winner, and write the run directory.

Everything that can be checked is checked before work starts (names, hyper-parameters,
data), so bad input costs one line and no compute.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.atomic import save_json_atomic
from zoo.build import make_space, make_task, task_class
from zoo.config_values import Duration, Flag, Number, check_values, duration_seconds
from zoo.device import Device, resolve_device
from zoo.estimate.base import ESTIMATORS
from zoo.rundir import config_digest, finished_metrics, write_run_config
from zoo.runners.local import JsonlLog, read_log, run_multi_trial
from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy

RESERVED_SEARCH_KEYS = {"name", "budget", "target", "time_budget"}  # target: what task=detection searches (read by space=detection)


@dataclass
class Run:
    cfg: DictConfig
    run_dir: Path
    space: Any = None
    task: Any = None
    estimator: Any = None
    strategy: Any = None
    started: float = field(default_factory=time.time)
    search_checkpoint: Any = None  # one-shot epoch checkpoint, removed when the run is complete
    runner: Any = None  # where a multi-trial search evaluates its candidates (zoo.runners.base.Runner)
    commit: str | None = field(default_factory=lambda: _source_commit())  # the code the run started with, not the code at its end


def _source_commit() -> str | None:
    from zoo.hub.bundle import git_commit

    return git_commit()


TOP_LEVEL_SPECS = {
    "seed": Number(integer=True, low=0),  # numpy generators take non-negative seeds
    "resume": Flag(),
    "progress": Flag(),
    "threads": Number(integer=True, low=1, null=True),
    "device": Device(),  # auto, cpu, cuda, cuda:N: what this machine has (zoo.device.resolve_device)
}


def check_top_level(cfg: Any) -> None:
    from zoo.constraints import Constraints, Family

    resolve_device(cfg.get("device", "auto"))  # first: its one line says why this machine refuses the device
    check_values(cfg, TOP_LEVEL_SPECS, "")
    Constraints.from_cfg(cfg.get("constraints"))
    Family.from_cfg(cfg)
    check_values(cfg.search, {"time_budget": Duration(null=True)}, "search")


def check_runner(cfg: Any, one_shot: bool) -> None:
    """One-line errors for a bad ``runner.*`` value, a runner a one-shot search cannot use, or Ray missing."""
    from zoo.runners.base import RUNNERS

    runner = cfg.get("runner")
    if runner is None:
        return
    cls = RUNNERS.get(runner.name)
    check_values(runner, cls.specs, "runner")
    if one_shot and runner.name != "local":
        raise ConfigError(
            f"runner={runner.name} is invalid with search={cfg.search.name}, which trains one supernet; allowed: runner=local "
            "(for several processes or GPUs run it under torchrun --nproc-per-node N)"
        )
    if runner.name == "ray":
        from zoo.runners.ray_tasks import check_ray_installed

        check_ray_installed()
        if str(cfg.get("device", "auto")).startswith("cuda") and not runner.num_gpus:
            raise ConfigError(
                f"runner.num_gpus={runner.num_gpus} is invalid with device={cfg.device}: Ray hides the GPUs from a task that asks for none; "
                "allowed: a number > 0 (1, or 0.5 to share a GPU between two candidates), or device=cpu"
            )


def make_runner(cfg: DictConfig, run: Run) -> Any:
    """The configured runner; remote ones rebuild the task from this config in each worker."""
    from zoo.runners.base import RUNNERS
    from zoo.runners.local import LocalRunner

    options = {k: v for k, v in OmegaConf.to_container(cfg.runner, resolve=True).items() if k != "name"}  # type: ignore[union-attr]
    if cfg.runner.name == "local":
        return LocalRunner(run.estimator, **options)
    if cfg.runner.name == "process" and cfg.get("threads"):
        options["threads"] = int(cfg.threads)
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["runner"] = {"name": "local", "workers": 1}  # a worker evaluates in its own process
    return RUNNERS.get(cfg.runner.name)(evaluate_in_worker, plain, str(run.run_dir.resolve()), **options)


_worker: dict[str, Any] = {}  # in a runner's worker process: the estimator built from the run's config


def evaluate_in_worker(cfg: dict[str, Any], run_dir: str, genotype_json: Any) -> tuple[Any, float]:
    """A remote runner's work per candidate: builds the run (task data included) from ``cfg`` once
    per worker process, then evaluates the genotype given as JSON (``(result or Failure, seconds)``)."""
    from zoo.runners.base import Failure, error_line, timed

    key = json.dumps(cfg, sort_keys=True, default=str) + run_dir
    if _worker.get("key") != key:
        conf = OmegaConf.create(cfg)
        conf.progress = False
        try:
            run = build(conf, Path(run_dir), setup=True, runner=False)
        except Exception as e:  # e.g. the data is missing on this worker's machine: the candidate fails, the search goes on
            return Failure(f"the worker could not build the task: {error_line(e)}"), 0.0
        _worker.update(key=key, estimator=run.estimator, space=run.space)
    return timed(_worker["estimator"], _worker["space"].genotype_from_json(genotype_json))


def deadline(cfg: DictConfig, started: float) -> float | None:
    """When ``search.time_budget`` runs out (counted from the start of this process's run), or None."""
    budget = cfg.search.get("time_budget")
    return None if budget is None else started + float(duration_seconds(budget))  # type: ignore[arg-type]


def strategy_kwargs(cls: type, search_cfg: Any) -> dict[str, Any]:
    """The strategy's hyper-parameters from ``search.*``; unknown keys are an error."""
    hp = {k: v for k, v in OmegaConf.to_container(search_cfg, resolve=True).items() if k not in RESERVED_SEARCH_KEYS}  # type: ignore[union-attr]
    params = inspect.signature(cls.__init__).parameters
    allowed = [p for p in params if p not in ("self", "space", "budget", "seed", "args", "kwargs", "_")]
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD and p.name != "_" for p in params.values())
    for k in hp:
        if k not in allowed and k != "objectives" and not accepts_any:
            raise ConfigError(f"search.{k} is not a hyper-parameter of search={search_cfg.name}; allowed: {', '.join(allowed) or 'none'}")
    return hp


def build(cfg: DictConfig, run_dir: Path | None, setup: bool = True, runner: bool = True) -> Run:
    """Builds and validates everything; raises one-line errors before any training.

    ``setup``: load the data (and, with ``runner``, start the runner: a Ray connection is checked
    before the data is read)."""
    from zoo.constraints import ConstrainedEstimator, Constraints, Family, check_reachable

    run = Run(cfg, run_dir or Path("."))
    check_top_level(cfg)
    constraints = Constraints.from_cfg(cfg.get("constraints"))
    family = Family.from_cfg(cfg)
    # what must be reachable before any training: the constraints, or a family's smallest member
    reach, field = (constraints, "constraints") if constraints.active else (None, "")
    if family is not None:
        reach, field = Constraints(**family.constraint(family.targets[0])), "family"
    run.space = make_space(cfg)
    strategy_cls = STRATEGIES.get(cfg.search.name)
    check_runner(cfg, issubclass(strategy_cls, OneShotStrategy))
    est_cls = ESTIMATORS.get(cfg.estimate.name)
    if constraints.active and (est_cls.tabular or not est_cls.needs_task):
        raise ConfigError(
            f"constraints are invalid with estimate={cfg.estimate.name}, which answers from tables and retrains nothing; "
            "allowed: constraints with estimate=train (or drop the constraints)"
        )
    if family is not None and (est_cls.tabular or not est_cls.needs_task):
        raise ConfigError(
            f"family.{family.kind} is invalid with estimate={cfg.estimate.name}, which answers from tables and retrains nothing; "
            "allowed: estimate=train"
        )
    hp = strategy_kwargs(strategy_cls, cfg.search)
    if issubclass(strategy_cls, OneShotStrategy):
        if est_cls.tabular:
            raise ConfigError(
                f"search={cfg.search.name} is one-shot and trains a supernet; estimate={cfg.estimate.name} answers multi-trial strategies only"
            )
        run.strategy = strategy_cls(seed=int(cfg.seed), progress=bool(cfg.progress), **hp)
        run.strategy.check_space(run.space)
    else:
        budget = cfg.search.get("budget")
        if not (isinstance(budget, int) and budget > 0):
            raise ConfigError(f"search.budget={budget!r} is invalid; allowed: a positive integer")
        run.strategy = strategy_cls(run.space, budget=budget, seed=int(cfg.seed), **hp)
    if setup and runner and cfg.get("runner") is not None and cfg.runner.name != "local" and not issubclass(strategy_cls, OneShotStrategy):
        run.runner = make_runner(cfg, run)  # a remote runner connects (and checks its resources) before the data is read
    if est_cls.needs_task or issubclass(strategy_cls, OneShotStrategy):
        task_cls = task_class(cfg)
        kind = getattr(strategy_cls, "supernet_kind", None)
        if issubclass(strategy_cls, OneShotStrategy) and strategy_cls.needs_problem and kind not in task_cls.supernet_kinds:
            takes = [
                n
                for n in STRATEGIES.names()
                if issubclass(c := STRATEGIES.get(n), OneShotStrategy) and c.needs_problem and c.supernet_kind in task_cls.supernet_kinds
            ]
            raise ConfigError(
                f"search={cfg.search.name} trains a {kind!r} supernet, which task={cfg.task.name} does not build; "
                f"allowed one-shot searches for it: {', '.join(takes)} (or any multi-trial strategy)"
            )
        if getattr(run.strategy, "order", 1) == 2 and not task_cls.second_order:
            raise ConfigError(
                f"search.order=2 is invalid with task={cfg.task.name} (its loss is not a plain forward of the supernet); allowed: 1"
            )
        run.task = make_task(cfg, space=run.space)
        if reach is not None and not run.task.width_keys:
            raise ConfigError(f"{field} is invalid with task={cfg.task.name}: it names no width to fit (Task.width_keys)")
        if setup:
            run.task.setup()
            if reach is not None and runner and not cfg.get("resume"):  # not again in each runner worker
                check_reachable(run.task, run.space, reach, int(cfg.seed), field=field)
    est_space = getattr(est_cls, "space", None)
    if est_space and est_space != run.space.name:
        raise ConfigError(f"estimate={cfg.estimate.name} answers space={est_space} only; got space={run.space.name}")
    if len(getattr(run.strategy, "objectives", ())) > 1:
        from zoo.search.pareto import check_estimator_objectives

        check_estimator_objectives(run.strategy.objectives, cfg.search.name, est_cls, cfg.estimate.name)
        if "latency" in run.strategy.objectives and cfg.estimate.get("latency") is False:
            raise ConfigError(
                f"search.objectives={list(run.strategy.objectives)!r} needs latency, but estimate.latency=false; allowed: estimate.latency=true"
            )
    run.estimator = est_cls(cfg.estimate, run.task)
    if constraints.active and not issubclass(strategy_cls, OneShotStrategy):
        run.estimator = ConstrainedEstimator(run.estimator, run.task, constraints)
    if setup and runner and not issubclass(strategy_cls, OneShotStrategy) and cfg.get("runner") is not None:
        run.runner = run.runner or make_runner(cfg, run)
    return run


def build_checks(cfg: DictConfig) -> None:
    """Checks names and hyper-parameters without loading data (used before Hydra starts)."""
    from zoo.runners.distributed import World

    check_distributed(cfg, World.from_env())
    mode = cfg.get("mode", "search")
    if mode != "search":
        set_ = [f"{node}.{k}" for node in ("constraints", "family") for k, v in (cfg.get(node) or {}).items() if v is not None]
        if set_:
            raise ConfigError(f"{', '.join(set_)} is invalid with mode={mode}: constraints and families shape a search; allowed: null")
    if mode == "finetune":
        from zoo.finetune import check_finetune

        return check_finetune(cfg)
    if mode == "play":
        from zoo.play import check_play

        return check_play(cfg)
    if mode != "search":
        raise ConfigError(f"mode={mode} is unknown; allowed: search, finetune, play")
    build(cfg, None, setup=False)


def supernet_cost(net: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A supernet's expected size and its size under equal weights (``expected_params``), or ``None``."""
    if not hasattr(net, "expected_params"):
        return None
    return net.expected_params(), net.expected_params(uniform=True).detach()


def _discard(record: dict[str, Any]) -> None:
    """The search log of torchrun's ranks > 0 (rank 0 writes the run's one log)."""


def search(run: Run, replicas: Any = None) -> Any:
    """Runs the search; ``replicas`` (:class:`zoo.runners.distributed.DistributedReplicas`, under
    ``torchrun``): every rank trains the supernet, rank 0 alone writes the log and checkpoints."""
    cfg = run.cfg
    if isinstance(run.strategy, OneShotStrategy):
        log = JsonlLog(run.run_dir / "search_log.jsonl") if replicas is None or replicas.is_main else None
        if not run.strategy.needs_problem:
            return run.strategy.search(None, log=log.append if log is not None else _discard)
        from zoo.runners.checkpoint import EpochCheckpoint

        if log is not None and not cfg.resume and log.path.exists() and log.path.stat().st_size:
            raise FileExistsError(f"{log.path} exists; pass resume=true to continue that search or use a new run directory")
        problem = run.task.one_shot_problem()
        if log is not None:
            checkpoint = EpochCheckpoint(run.run_dir, resume=bool(cfg.resume), log_path=log.path)
        else:  # a rank > 0: restores rank 0's checkpoint, writes none
            checkpoint = replicas.follower_checkpoint(run.run_dir, resume=bool(cfg.resume))
        problem.checkpoint = checkpoint.track(problem.train_loader, problem.valid_loader)
        from zoo.constraints import Constraints, fits_at_some_width

        constraints = Constraints.from_cfg(cfg.get("constraints"))
        if constraints.active:  # spos's evolution keeps to architectures some width fits; darts weighs expected size
            problem.feasible = lambda genotype: fits_at_some_width(run.task, genotype, constraints)
            problem.cost = supernet_cost
        if replicas is not None:
            problem.distributed = replicas
        run.search_checkpoint = problem.checkpoint
        run.strategy.deadline = deadline(cfg, run.started)
        return run.strategy.search(problem, log=log.append if log is not None else _discard)
    strategy = run_multi_trial(
        run.strategy,
        run.estimator,
        run.run_dir,
        resume=bool(cfg.resume),
        progress=bool(cfg.progress),
        runner=run.runner,
        deadline=deadline(cfg, run.started),
    )
    if not strategy.successes():
        from zoo.runners.local import CandidatesFailed

        infeasible = [r for _, r in strategy.history if r.get("infeasible")]
        if infeasible and len(infeasible) == len(strategy.history):
            from zoo.constraints import Constraints

            constraints = Constraints.from_cfg(cfg.get("constraints"))
            smallest = {k: min(r["final_cost"][k] for r in infeasible) for k in constraints.limits()}
            raise CandidatesFailed(
                f"no candidate of the search fits the constraints at any width ({len(infeasible)} tried, none trained; "
                f"smallest: {constraints.describe(smallest)}); allowed: a looser constraint or a larger search.budget"
            )
        raise CandidatesFailed(
            f"no candidate of the search succeeded ({len(strategy.history)} failed); their errors are in {run.run_dir / 'search_log.jsonl'}"
        )
    return strategy.best()[0]


FINAL_SIZE = "final_size.json"


def fit_final_width(run: Run, genotype: Any) -> Any:
    """With constraints, fits the winner's final width to them (:func:`zoo.constraints.fit_width`) and
    sets it on the task; the fit is saved to ``final_size.json`` first, so that a resumed run retrains at
    the same width (a latency fit is a measurement and could differ). ``None`` without constraints."""
    from zoo.constraints import Constraints, Fitted, fit_width

    constraints = Constraints.from_cfg(run.cfg.get("constraints"))
    if not constraints.active:
        return None
    path = run.run_dir / FINAL_SIZE
    saved = json.loads(path.read_text()) if run.cfg.resume and path.exists() else None
    if saved is not None and saved.get("genotype") == genotype.to_json():
        fitted = Fitted(saved["widths"], saved["cost"], saved["feasible"], bool(saved.get("capped", False)))
    else:
        fitted = fit_width(run.task, genotype, constraints)
        save_json_atomic(path, {"genotype": genotype.to_json(), **fitted.to_json()})
    if not fitted.feasible:
        raise ConfigError(
            f"the searched architecture breaks the constraints even at the smallest width ({constraints.describe(fitted.cost)}); "
            "allowed: a looser constraint, or a multi-trial search (it trains only candidates that fit)"
        )
    run.task.width_overrides = dict(fitted.widths)
    return fitted


def search_seconds(run: Run) -> float:
    """Seconds since the run started, plus what the search had taken before this process resumed it: a one-shot
    search's from its epoch checkpoint, a multi-trial search's from its log (:func:`_logged_before`)."""
    before = float(getattr(run.search_checkpoint, "seconds_before", 0.0))
    if not before and run.cfg.get("resume"):
        before = _logged_before(run.run_dir / "search_log.jsonl", run.started)
    return round(time.time() - run.started + before, 1)


def _logged_before(log: Path, started: float) -> float:
    """The seconds during which the candidates a multi-trial search logged before ``started`` (a resume) were being
    evaluated: the union of their [start, finish] spans, so the time between a kill and its resume is not counted."""
    spans = sorted(
        (r["finished_at"] - r["seconds"], r["finished_at"])
        for r in (read_log(log) if log.is_file() else [])
        if "trial" in r
        and isinstance(r.get("finished_at"), (int, float))
        and isinstance(r.get("seconds"), (int, float))
        and r["finished_at"] < started
    )
    total, end = 0.0, float("-inf")
    for b, e in spans:
        total += max(0.0, e - max(b, end))
        end = max(end, e)
    return total


def finish(run: Run, genotype: Any) -> dict[str, Any]:
    """Writes genotype, retrained model bundle, metrics and plots; returns the metrics."""
    from zoo.constraints import Constraints
    from zoo.hub.bundle import save_bundle
    from zoo.plots import plot_genotype, plot_search_curve

    d = run.run_dir
    save_json_atomic(d / "genotype.json", genotype.to_json())
    records = read_log(d / "search_log.jsonl")
    metrics: dict[str, Any] = {
        "task": run.cfg.task.name if run.task is not None else None,
        "search": run.cfg.search.name,
        "space": run.space.name,
        "genotype": genotype.to_json(),
        "search_seconds": search_seconds(run),
    }
    if run.task is not None:
        metrics["device"] = str(run.task.device)  # where this process searched and trained (a resume may use another)
    stopped = getattr(run.strategy, "stopped_by", None) or next((r["stopped"] for r in records if "stopped" in r), None)
    if stopped:
        metrics["stopped_by"] = stopped
    failed = [r for r in records if r.get("failed")]
    infeasible = [r for r in records if r.get("result", {}).get("infeasible")]
    records = [r for r in records if ("result" in r and not r["result"].get("infeasible")) or "reward" in r]
    if failed:
        metrics["search_failed"] = len(failed)
    if infeasible:
        metrics["search_infeasible"] = len(infeasible)
    if records:
        rewards = [r["result"]["reward"] if "result" in r else r["reward"] for r in records]
        metrics["search_reward"] = max(rewards)
        metrics["search_evaluations"] = len(rewards)
        plot_search_curve(
            rewards, d / "search_curve.png", xlabel="trial" if "result" in records[0] else "epoch", title=f"{run.cfg.search.name} search"
        )
    plot_genotype(genotype, d / "genotype.png")
    if run.estimator.tabular:
        metrics.update(run.estimator.final(genotype))
    else:
        from zoo.runners.checkpoint import TrainingCheckpoints

        fitted = fit_final_width(run, genotype)
        if fitted is not None:
            metrics["constraints"] = Constraints.from_cfg(run.cfg.constraints).report(fitted.cost)
            metrics["final_widths"] = fitted.widths
            if fitted.capped:
                metrics["width_capped"] = True  # MAX_SCALE x task.model still met the constraints
        t0 = time.time()
        checkpoints = TrainingCheckpoints(d, resume=bool(run.cfg.resume))
        model, test_metrics = run.task.retrain(genotype, checkpoints)
        metrics.update(test_metrics)
        before = sum(c.seconds_before for c in checkpoints.made.values())  # what a resumed retraining had taken earlier
        metrics["retrain_seconds"] = round(time.time() - t0 + before, 1)
        outputs = run.task.write_outputs(d)  # task-specific files, e.g. drawn predictions
        if outputs:
            metrics["task_outputs"] = outputs
        save_bundle(
            d,
            model,
            {
                "task": run.task.name,
                "model": run.task.model_config(genotype, final=True),
                "labels": run.task.classes,
                "data": run.task.describe_data(),
                "metrics": {k: v for k, v in test_metrics.items()},
                "search": {
                    "strategy": run.cfg.search.name,
                    "space": run.space.name,
                    **({"ops": list(run.space.primitives)} if hasattr(run.space, "primitives") else {}),
                },
                "run_config": OmegaConf.to_container(run.cfg, resolve=True),
                "license": "Apache-2.0",
                **({"git_commit": run.commit} if run.commit else {}),
            },
        )
        checkpoints.remove()
    if len(getattr(run.strategy, "objectives", ())) > 1:
        from zoo.search.pareto import write_pareto

        metrics["objectives"] = list(run.strategy.objectives)
        final = run.estimator.final if run.estimator.tabular else None
        metrics["pareto_front"] = write_pareto(d, run.strategy.history, run.strategy.objectives, run.space.describe, final)
    metrics["config_sha256"] = config_digest(run.cfg)
    save_json_atomic(d / "metrics.json", metrics)
    if run.search_checkpoint is not None:  # the run is complete: resume=true finds it finished by metrics.json
        run.search_checkpoint.remove()
    return metrics


def summary(run: Run, genotype: Any, metrics: dict[str, Any], header: str | None = None) -> str:
    lines = [
        "",
        header or f"zoo run finished in {time.time() - run.started:.0f}s -> {run.run_dir}",
        f"  task      {metrics.get('task')}    search {metrics['search']}    space {metrics['space']}",
        f"  genotype  {run.space.describe(genotype)}",
    ]
    if "search_reward" in metrics:
        failed = f" ({metrics['search_failed']} failed)" if metrics.get("search_failed") else ""
        lines.append(f"  search    best reward {metrics['search_reward']:.4f} over {metrics['search_evaluations']} evaluations{failed}")
    if "constraints" in metrics:
        met = "met" if all(c["met"] for c in metrics["constraints"].values()) else "NOT met"
        costs = ", ".join(f"{k} {c['final']:,} <= {c['limit']:,}" for k, c in metrics["constraints"].items())
        widths = ", ".join(f"{k}={v}" for k, v in metrics.get("final_widths", {}).items())
        infeasible = (
            f"; {metrics['search_infeasible']} candidates could not fit and were not trained" if metrics.get("search_infeasible") else ""
        )
        capped = "; the width stopped at its cap, 8x task.model: the constraint leaves room" if metrics.get("width_capped") else ""
        lines.append(f"  constraints {met}: {costs} (fitted width {widths}){infeasible}{capped}")
    if metrics.get("stopped_by") == "time_budget":
        lines.append(f"  stopped   search.time_budget={run.cfg.search.time_budget} ended the search; the best found so far was retrained")
    shown = {
        k: v
        for k, v in metrics.items()
        if (k.startswith(("test_", "final_", "val_")) and k != "final_widths") or k in ("params", "latency_ms", "nb201_index")
    }
    width = max([22, *(len(k) + 2 for k in shown)])
    for k, v in shown.items():
        if isinstance(v, dict):  # e.g. per-class scores
            v = ", ".join(f"{name} {x:.4f}" if isinstance(x, float) else f"{name} {x}" for name, x in v.items())
        lines.append(f"  {k:<{width}}{v:.4f}" if isinstance(v, float) else f"  {k:<{width}}{v}")
    base = metrics.get("baseline")
    if isinstance(base, dict) and "params_ratio" in base:
        lead = ", ".join(f"{k} {v:+.4f}" for k, v in metrics.get("searched_minus_baseline", {}).items())
        lines.append(f"  baseline  {base.get('model')}: {base['params']:,} parameters ({base['params_ratio']:.2f}x the searched model's)")
        if lead:
            lines.append(f"  searched minus baseline  {lead}")
    for warning in metrics.get("warnings", []):  # what the task found wrong with a final training (e.g. not converged)
        lines.append(f"  warning   {warning}")
    if "pareto_front" in metrics:
        from zoo.search.pareto import front_summary

        lines += front_summary(metrics["pareto_front"], metrics["objectives"])
    files = [p.name for p in sorted(run.run_dir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    lines.append(f"  files     {', '.join(files)}")
    return "\n".join(lines)


def start(cfg: DictConfig, run_dir: Path) -> Run:
    """What a search run does before it searches: build it (every check, the data read), record its config in
    ``run_dir`` and seed torch (with ``threads``)."""
    run = build(cfg, run_dir)
    write_run_config(cfg, run_dir)
    torch.manual_seed(int(cfg.seed))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    return run


def execute(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    from zoo.runners.distributed import World

    world = World.from_env()
    if world.distributed:  # started by torchrun with more than one process
        return execute_distributed(cfg, run_dir, world)
    if cfg.get("mode", "search") == "finetune":
        from zoo.finetune import run_finetune

        torch.manual_seed(int(cfg.seed))
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        return run_finetune(cfg, run_dir)
    if cfg.get("mode", "search") == "play":
        from zoo.play import run_play

        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        return run_play(cfg, run_dir)
    done = finished_metrics(cfg, run_dir) if cfg.resume else None
    if done is not None:  # resume=true on a finished run: nothing left to do
        return report_finished(cfg, run_dir, done)
    run = start(cfg, run_dir)
    genotype = search(run)
    metrics = finish(run, genotype)
    print(summary(run, genotype, metrics), file=sys.stdout, flush=True)
    return metrics


def report_finished(cfg: DictConfig, run_dir: Path, done: dict[str, Any]) -> dict[str, Any]:
    """``resume=true`` on a run that finished with this config: its summary, and nothing else."""
    run = build(cfg, run_dir, setup=False)
    genotype = run.space.genotype_from_json(done["genotype"])
    print(
        summary(run, genotype, done, f"zoo run had already finished with this config; nothing to resume -> {run_dir}"),
        file=sys.stdout,
        flush=True,
    )
    return done


def check_distributed(cfg: DictConfig, world: Any) -> None:
    """Under ``torchrun`` with several processes (``world``, a :class:`zoo.runners.distributed.World`):
    only a one-shot search that trains a supernet; a one-line error otherwise."""
    if not world.distributed:
        return
    mode = cfg.get("mode", "search")
    cls = STRATEGIES.get(cfg.search.name)
    if mode != "search" or not (issubclass(cls, OneShotStrategy) and cls.needs_problem):
        takes = [n for n in STRATEGIES.names() if issubclass(c := STRATEGIES.get(n), OneShotStrategy) and c.needs_problem]
        raise ConfigError(
            f"torchrun ({world.size} processes) runs one-shot searches, which train a supernet; got mode={mode} search={cfg.search.name}; "
            f"allowed: search={', '.join(takes)} (or run without torchrun)"
        )


def execute_distributed(cfg: DictConfig, run_dir: Path, world: Any) -> dict[str, Any]:
    """One one-shot search by ``torchrun``'s processes (:mod:`zoo.runners.distributed`): every rank
    trains the supernet on its share of the batches and derives the same genotype; rank 0 alone
    writes the run directory (Hydra's on rank 0; the other ranks' is a scratch directory), then
    retrains the winner and writes the bundle while the others exit."""
    from zoo.runners.distributed import DistributedReplicas, drop_scratch_dir

    drop_scratch_dir(run_dir)  # a rank > 0 ran Hydra in a scratch directory: gone before any waiting
    check_distributed(cfg, world)  # the CLI's pre-check has refused the rest already; this is for other callers
    # DDP reduces gradients only through the module's forward; a loss that calls more of the supernet has them averaged by hand
    with DistributedReplicas.start(world, use_ddp=task_class(cfg).second_order) as replicas:
        run_dir = Path(replicas.share(str(run_dir)))  # rank 0's: Hydra's ${now:...} may differ by a second between ranks
        done = replicas.share(finished_metrics(cfg, run_dir) if cfg.resume and replicas.is_main else None)
        if done is None:
            run = build(cfg, run_dir)
            if replicas.is_main:
                write_run_config(cfg, run_dir)
            else:
                run.strategy.progress = False
            torch.manual_seed(int(cfg.seed))
            if cfg.get("threads"):
                torch.set_num_threads(int(cfg.threads))
            genotype = search(run, replicas)
            replicas.check_same(genotype.to_json(), "genotype")
    if not replicas.is_main:
        return done or {}
    if done is not None:
        return report_finished(cfg, run_dir, done)
    metrics = finish(run, genotype)
    print(summary(run, genotype, metrics), file=sys.stdout, flush=True)
    return metrics
