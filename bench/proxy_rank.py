"""Proxy ranking: does the search's estimate rank architectures the way their retrained metric does?

    .venv/bin/python bench/proxy_rank.py classification --n 12 --jobs 2 --out runs/proxy_rank/classification \\
        --table runs/proxy_rank/classification.md -- data=fashion_mnist trainer.estimate_epochs=1 trainer.epochs=4

The run config is composed as ``python -m zoo task=TASK [overrides]`` composes it (the CLI's one-line pre-check,
:func:`zoo.__main__.compose_config`, :func:`zoo.pipeline.build`), with ``search=random``, ``progress=false`` and
``task.baseline.enabled=false`` unless the overrides say otherwise (no baseline is trained). ``N`` distinct
architectures of the task's space are measured: first the zoo registry's entries of the task whose genotype lies in
the space (published cells such as ``darts_v2``, searched checkpoints such as ``digits-darts``; ``--no-registry``
leaves them out), then uniform samples drawn by ``search=random``'s sampler seeded with ``--seed``. Each gets

* ``estimate``: what a multi-trial search is told, ``task.estimate(genotype)["reward"]`` (the estimation network
  trained for ``trainer.estimate_epochs`` and scored on the search-validation split);
* ``metric``: the held-out test score of the full retraining, ``task.retrain(genotype)["score"]`` (named by the
  task's test metric, e.g. ``test_accuracy``), with the parameters of the final and of the estimation network;
* with ``--supernet spos`` (tasks with a single-path supernet: classification), the validation score of the
  architecture's path in one SPOS supernet trained once with ``search=spos``'s options (e.g. ``search.epochs=10``),
  batch-norm statistics recalibrated per path as SPOS's evolution scores it. A DARTS (relaxed) supernet has no
  discrete path to score an architecture on, so ``spos`` is the only kind;
* with ``--early-curve X ...`` (tasks whose retraining records a learning curve: rl's evaluation returns by
  environment step, translation's validation cross-entropy by epoch), the mean of the retraining's own curve up to
  ``X``: what a longer estimate, on the final network and schedules, would rank (the curve is kept in the log).

It prints, and writes as Markdown (``--table``) and JSON (``results.json`` in ``--out``), Kendall's tau and Spearman's
rho of each proxy against the retrained metric (and, for reference, of the final network's parameter count), with the
per-architecture table. Each finished architecture is appended to ``proxy_log.jsonl`` in ``--out`` at once, keyed by
its genotype and the digest of the options that decide its numbers (:func:`zoo.rundir.config_digest`, ``search`` and
``estimate`` aside): the same command again skips what is logged, continues an interrupted retraining from its last
epoch checkpoint and an interrupted supernet from its last epoch. Each record also carries the digest of the
retraining's options alone (the estimate-only ``estimate_*`` and ``search_items`` of ``task`` and ``trainer`` aside),
so a command that changes only the estimate (``-- trainer.estimate_epochs=4``) trains each logged architecture's
estimate and reuses its retraining: changing an estimate until it ranks costs estimates, not retrainings. ``--jobs K`` measures K architectures at a time,
each in a spawned worker process with one torch thread. Torch is seeded with the config's ``seed`` before each
estimate and retraining, so an architecture's numbers do not depend on the order, on ``--jobs`` or on a resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NoReturn

LOG = "proxy_log.jsonl"
RESULTS = "results.json"
DEFAULTS = {"search": "random", "progress": "false", "task.baseline.enabled": "false"}  # unless the overrides set them
SUPERNETS = {"spos": "spos"}  # --supernet value -> the one-shot strategy whose supernet scores the paths
NOT_IN_DIGEST = ("search", "estimate")  # options that change neither an estimate nor a retraining here


def die(msg: str) -> NoReturn:
    print(f"proxy_rank: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


# ---- config


def run_overrides(task: str, overrides: Sequence[str], supernet: str | None) -> list[str]:
    """``task=TASK``, this script's defaults where ``overrides`` leave them (``search=spos`` with ``--supernet spos``), the overrides."""
    given = {o.partition("=")[0].lstrip("+~") for o in overrides if "=" in o}
    if "task" in given:
        die(
            f"give the task as the first argument, not as task=... after -- (got {' '.join(o for o in overrides if o.startswith('task='))})"
        )
    defaults = dict(DEFAULTS)
    if supernet is not None:
        strategy = SUPERNETS[supernet]
        chosen = next((o.partition("=")[2] for o in overrides if o.partition("=")[0].lstrip("+~") == "search"), strategy)
        if chosen != strategy:
            die(f"--supernet {supernet} trains search={strategy}'s supernet; got search={chosen}; allowed: search={strategy} or no search=")
        defaults["search"] = strategy
    return [f"task={task}", *(f"{k}={v}" for k, v in defaults.items() if k not in given), *overrides]


def compose(task: str, overrides: list[str], supernet: str | None) -> Any:
    """The checked config of ``python -m zoo OVERRIDES`` (one line and exit 2 for a bad name or value)."""
    from zoo.__main__ import compose_config, precheck
    from zoo.plugins import PluginError, load_plugins
    from zoo.search.base import STRATEGIES
    from zoo.task import TASKS

    try:
        load_plugins()
    except PluginError as e:
        die(str(e))
    if supernet is not None and task in TASKS.names():  # an unknown task is the pre-check's to name
        kind = STRATEGIES.get(SUPERNETS[supernet]).supernet_kind
        if kind not in TASKS.get(task).supernet_kinds:
            takes = [t for t in TASKS.names() if kind in TASKS.get(t).supernet_kinds]
            die(
                f"--supernet {supernet} scores paths of a {kind!r} supernet, which task={task} does not build; allowed: tasks {', '.join(takes)}"
            )
    precheck(overrides)  # the CLI's checks: unknown group options, keys and values end in one line
    return compose_config(overrides)


def build_run(cfg: Any) -> Any:
    """:func:`zoo.pipeline.build` with the data loaded (no runner); one line for what it refuses."""
    from zoo.constraints import Constraints, Family
    from zoo.pipeline import build
    from zoo.registry import UnknownNameError

    try:
        if Constraints.from_cfg(cfg.get("constraints")).active or Family.from_cfg(cfg) is not None:
            die("constraints.* and family.* are invalid here: architectures are measured at task.model's width; allowed: null")
        run = build(cfg, None, setup=True, runner=False)
    except (ValueError, UnknownNameError, FileExistsError) as e:
        die(str(e).strip().splitlines()[0])
    if run.task is None:
        die(f"estimate={cfg.estimate.name} answers from tables and trains nothing; allowed: estimate=train")
    return run


def _deciding(cfg: Any) -> Any:
    """The config less the options that change neither an estimate nor a retraining (:data:`NOT_IN_DIGEST`)."""
    from omegaconf import OmegaConf

    return OmegaConf.masked_copy(cfg, [k for k in cfg if k not in NOT_IN_DIGEST])


def result_digest(cfg: Any) -> str:
    """The digest of the options that decide an architecture's estimate and retrained metric."""
    from zoo.rundir import config_digest

    return config_digest(_deciding(cfg))


def logged_architectures(records: list[dict[str, Any]], field: str, digest: str) -> dict[str, dict[str, Any]]:
    """The logged architectures (not supernet scores) whose ``field`` (``config_sha256``, ``retrain_sha256``) is ``digest``,
    by genotype key."""
    return {r["key"]: r for r in records if r.get("kind", "arch") == "arch" and r.get(field) == digest}


def estimate_only(key: str) -> bool:
    """Task and trainer options that only the estimate reads (``estimate_epochs``, ``estimate_model``, ...,
    ``search_items``), not the retraining."""
    return key.startswith("estimate") or key == "search_items"


def retrain_digest(cfg: Any) -> str:
    """:func:`result_digest` less the estimate-only options: the digest of what decides a retrained metric, so that
    a run with another estimate reuses the retrainings logged under the same retraining options."""
    from omegaconf import OmegaConf

    from zoo.rundir import config_digest

    kept = _deciding(cfg)
    for group in ("task", "trainer"):
        if kept.get(group) is not None:
            kept[group] = OmegaConf.masked_copy(kept[group], [k for k in kept[group] if not estimate_only(str(k))])
    return config_digest(kept)


# ---- architectures


def registry_genotypes(cfg: Any, task: str, space: Any) -> list[tuple[str, Any]]:
    """The zoo registry's genotypes of ``task`` that lie in ``space`` (by entry name), as ``("registry:NAME", genotype)``."""
    from zoo.hub.registry import load_entries
    from zoo.space.genotype import genotype_from_json, genotype_key

    try:
        entries = load_entries(cfg.hub.get("registry"))
    except ValueError as e:  # HubError: an extra registry that cannot be read
        print(f"proxy_rank: warning: no registry architectures ({str(e).strip().splitlines()[0]})", file=sys.stderr)
        return []
    out = []
    for name, entry in sorted(entries.items()):
        if entry.task != task or "arch" not in entry.model:
            continue
        try:
            g = genotype_from_json(entry.model["arch"])
            if getattr(g, "space", space.name) != space.name or genotype_key(space.decode(space.encode(g))) != genotype_key(g):
                continue
        except (ValueError, KeyError, IndexError, TypeError):  # another space's genotype, or ops this space lacks
            continue
        out.append((f"registry:{name}", g))
    return out


def pick_architectures(space: Any, n: int, seed: int, first: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``first`` (distinct, at most ``n``), then distinct uniform samples of ``space`` (``search=random``'s sampler, ``seed``)."""
    from zoo.search.random_search import MAX_TRIES, RandomSearch
    from zoo.space.genotype import genotype_key

    picked: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for source, g in first:
        if len(picked) < n and genotype_key(g) not in seen:
            picked.append((source, g))
            seen.add(genotype_key(g))
    sampler = RandomSearch(space, budget=n, seed=seed)
    sampler.pending.extend(g for _, g in picked)  # never drawn again
    for _ in range(MAX_TRIES * n):
        if len(picked) >= n:
            break
        g = sampler.ask(1)[0]
        if genotype_key(g) not in seen:
            picked.append(("random", g))
            seen.add(genotype_key(g))
    if len(picked) < n:
        die(
            f"--n {n} is more than the {len(picked)} distinct architectures found in space={space.name}; allowed: --n {len(picked)} or fewer"
        )
    return picked


# ---- measuring one architecture (in this process or a worker)

_built: dict[str, Any] = {}  # the run built from a config, once per process


def _start_worker(driver: int) -> None:
    """A worker: one torch thread; it ends when the driver process is gone (a killed run leaves no orphan training on)."""
    import threading

    import torch

    from zoo.runners.process import _exit_with_parent

    threading.Thread(target=_exit_with_parent, args=(driver,), daemon=True).start()
    torch.set_num_threads(1)


def _outcome(future: Future[dict[str, Any]]) -> dict[str, Any]:
    """A worker's result; a worker that died (out of memory, killed) fails its architecture."""
    from zoo.runners.base import error_line

    try:
        return future.result()
    except Exception as e:  # BrokenProcessPool: every architecture in flight fails, and runs again next time
        return {"failed": error_line(e)}


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def retrain_curve(out: dict[str, Any]) -> dict[str, Any]:
    """The retraining's learning curve as ``[[x, score], ...]`` with higher scores better, and the unit of ``x``: rl's
    evaluation returns by environment steps, translation's validation cross-entropy (negated) by epoch; ``{}`` for a
    task that records none."""
    if out.get("curve"):
        return {"retrain_curve": [[int(h["steps"]), float(h["eval_return"])] for h in out["curve"]], "retrain_curve_unit": "steps"}
    if out.get("valid_cross_entropy_curve"):
        curve = [[i + 1, -float(v)] for i, v in enumerate(out["valid_cross_entropy_curve"])]
        return {"retrain_curve": curve, "retrain_curve_unit": "epochs"}
    return {}


def _remove_empty(directory: Path) -> None:
    """Removes ``directory`` and then its parent, each only if empty (another worker may be writing beside it)."""
    for d in (directory, directory.parent):
        try:
            d.rmdir()
        except OSError:
            return


def metric_name(out: dict[str, Any]) -> str:
    """The test metric a retraining's ``score`` is (``test_accuracy``, ``test_mAP50``, ...), else ``score``."""
    return next((k for k, v in out.items() if k != "score" and k.startswith("test_") and v == out["score"]), "score")


RETRAINED = ("metric", "metric_name", "params", "retrain_result", "retrain_curve", "retrain_curve_unit", "retrain_seconds")


def measure(cfg: dict[str, Any], genotype_json: Any, checkpoint_dir: str, retrained: dict[str, Any] | None = None) -> dict[str, Any]:
    """The estimate and the retrained metric of one architecture (``{"failed": error}`` if either raised);
    ``retrained``: a logged retraining of it under the same retraining options, kept instead of training again."""
    import torch

    from zoo.runners.base import error_line
    from zoo.runners.checkpoint import TrainingCheckpoints

    key = json.dumps(cfg, sort_keys=True, default=str)
    try:
        if _built.get("key") != key:
            from omegaconf import OmegaConf

            from zoo.pipeline import build

            conf = OmegaConf.create(cfg)
            conf.progress = False
            _built.update(key=key, run=build(conf, None, setup=True, runner=False))
        task, space = _built["run"].task, _built["run"].space
        genotype = space.genotype_from_json(genotype_json)
        seed = int(cfg["seed"])
        t0 = time.time()
        torch.manual_seed(seed)
        estimate = dict(task.estimate(genotype))
        t1 = time.time()
        if retrained is not None:
            return {
                "estimate": float(estimate["reward"]),
                "params_estimate": estimate.get("params"),
                "estimate_result": _numbers(estimate),
                "estimate_seconds": round(t1 - t0, 1),
                **{k: retrained[k] for k in RETRAINED if k in retrained},
                "retrain_reused": True,
            }
        torch.manual_seed(seed)
        checkpoints = TrainingCheckpoints(checkpoint_dir, resume=True)  # a killed retraining continues from its last epoch
        _, out = task.retrain(genotype, checkpoints)
        curve = retrain_curve(out)
        checkpoints.remove()
        _remove_empty(Path(checkpoint_dir))
    except Exception as e:  # this architecture fails; the others go on
        return {"failed": error_line(e)}
    return {
        "estimate": float(estimate["reward"]),
        "metric": float(out["score"]),
        "metric_name": metric_name(out),
        "params": out.get("params"),
        "params_estimate": estimate.get("params"),
        "estimate_result": _numbers(estimate),
        "retrain_result": _numbers(out),
        **curve,
        "estimate_seconds": round(t1 - t0, 1),
        "retrain_seconds": round(time.time() - t1, 1),
    }


def measure_all(
    run: Any,
    cfg_plain: dict[str, Any],
    todo: list[tuple[str, Any]],
    out: Path,
    digests: tuple[str, str],
    jobs: int,
    log: Any,
    total: int,
    retrained: dict[str, dict[str, Any]],
) -> list[str]:
    """Measures ``todo`` (``(source, genotype)``), appending each result to ``log`` as it finishes; the failures' lines.
    ``digests``: the result and the retraining digest; ``retrained``: logged retrainings by genotype key, reused."""
    from tqdm import tqdm

    from zoo.space.genotype import genotype_key

    digest, rdigest = digests

    def ckpt_dir(g: Any) -> str:
        import hashlib

        return str(out / "checkpoints" / f"{digest[:12]}-{hashlib.sha256(genotype_key(g).encode()).hexdigest()[:12]}")

    def record(source: str, g: Any, result: dict[str, Any]) -> None:
        if "failed" in result:
            failures.append(f"{run.space.describe(g)}: {result['failed']}")
            bar.write(f"proxy_rank: architecture failed ({source}): {result['failed']}")
        else:
            log.append(
                {
                    "config_sha256": digest,
                    "retrain_sha256": rdigest,
                    "key": genotype_key(g),
                    "source": source,
                    "genotype": g.to_json(),
                    **result,
                }
            )
        bar.update(1)

    failures: list[str] = []
    bar = tqdm(total=total, initial=total - len(todo), desc="architectures", unit="arch", file=sys.stderr)
    if jobs == 1:
        _built.update(key=json.dumps(cfg_plain, sort_keys=True, default=str), run=run)  # measure() reuses this process's run
        for source, g in todo:
            record(source, g, measure(cfg_plain, g.to_json(), ckpt_dir(g), retrained.get(genotype_key(g))))
    else:
        pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(os.getpid(),))
        try:
            futures: dict[Future[dict[str, Any]], tuple[str, Any]] = {
                pool.submit(measure, cfg_plain, g.to_json(), ckpt_dir(g), retrained.get(genotype_key(g))): (source, g) for source, g in todo
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    record(*futures[f], _outcome(f))
        except BaseException:  # Ctrl-C: the architectures in flight are dropped (they run again next time)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    bar.close()
    return failures


# ---- the supernet proxy


def supernet_scores(run: Any, cfg: Any, genotypes: list[Any], out: Path, log: Any, logged: list[dict[str, Any]]) -> dict[str, float]:
    """Each genotype's score in one SPOS supernet (trained once, epoch checkpoints in ``out``), logged as it is scored."""
    import numpy as np
    import torch

    from zoo.rundir import config_digest
    from zoo.runners.checkpoint import EpochCheckpoint
    from zoo.search.spos import SPOS
    from zoo.space.genotype import genotype_key

    digest = config_digest(cfg)
    scores = {r["key"]: float(r["score"]) for r in logged if r.get("kind") == "supernet" and r.get("config_sha256") == digest}
    missing = [g for g in genotypes if genotype_key(g) not in scores]
    if not missing:
        return scores
    strategy: SPOS = run.strategy  # built from search.* of search=spos
    strategy.progress = True
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    problem = run.task.one_shot_problem()
    checkpoint = EpochCheckpoint(out / f"supernet-{digest[:12]}", resume=True)
    problem.checkpoint = checkpoint.track(problem.train_loader, problem.valid_loader)
    torch.manual_seed(strategy.seed)  # as SPOS.search begins
    rng = np.random.default_rng(strategy.seed)
    net = problem.build_supernet("single_path").to(problem.device)
    strategy._train_supernet(net, problem, rng, None)
    calibration = strategy._calibration_batches(problem)
    for g in missing:
        score = SPOS._evaluate(net, problem, g, calibration)
        log.append({"kind": "supernet", "supernet": "spos", "config_sha256": digest, "key": genotype_key(g), "score": score})
        scores[genotype_key(g)] = score
    checkpoint.remove()
    _remove_empty(checkpoint.directory)
    return scores


# ---- report


def early_curve(curve: list[list[float]] | None, cut: int) -> float | None:
    """The mean of a learning curve's points up to ``cut`` (steps or epochs: the area under its start), ``None`` without
    a curve or a point there.

    The retraining runs the full schedule from its start, so its start is what a candidate trained that long with the
    final network and the run's schedules would show (one seed, at the retraining's evaluation spacing)."""
    points = [v for s, v in curve or [] if s <= cut]
    return sum(points) / len(points) if points else None


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Kendall's tau and Spearman's rho of ``x`` against ``y`` with their p-values (``None`` where undefined, e.g. all ties)."""
    from scipy.stats import kendalltau, spearmanr

    def num(v: Any) -> float | None:
        v = float(v)
        return None if v != v else round(v, 4)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: nan, reported as None
        tau, tau_p = kendalltau(x, y)
        rho, rho_p = spearmanr(x, y)
    return {"kendall_tau": num(tau), "kendall_p": num(tau_p), "spearman_rho": num(rho), "spearman_p": num(rho_p)}


def ranks(values: Sequence[float]) -> list[int]:
    """1 = highest; ties share the best rank."""
    from scipy.stats import rankdata

    return [int(r) for r in rankdata([-v for v in values], method="min")]


def report(
    task: str, cfg: Any, rows: list[dict[str, Any]], proxies: dict[str, str], describe: Any, overrides: list[str]
) -> tuple[str, dict[str, Any]]:
    """The Markdown report and the results document."""
    metric = rows[0]["metric_name"]
    y = [r["metric"] for r in rows]

    def over(name: str) -> tuple[list[float], list[float]]:  # a proxy some rows lack (an early curve) is ranked over the rest
        pairs = [(r[name], r["metric"]) for r in rows if r.get(name) is not None]
        return [a for a, _ in pairs], [b for _, b in pairs]

    stats = {}
    for name, label in proxies.items():
        x, ys = over(name)
        stats[name] = {"label": label + (f" ({len(x)} of {len(rows)} architectures)" if len(x) < len(rows) else ""), "n": len(x)}
        stats[name].update(
            correlation(x, ys) if len(x) >= 3 else {"kendall_tau": None, "kendall_p": None, "spearman_rho": None, "spearman_p": None}
        )
    metric_ranks = ranks(y)
    proxy_ranks = {
        name: ranks([r[name] if r.get(name) is not None else float("-inf") for r in rows]) for name in proxies if name != "params"
    }
    trainer = cfg.trainer
    budget = "estimate_steps" if "estimate_steps" in trainer else "estimate_epochs"  # rl counts environment steps
    steps = rows[0].get("retrain_result", {}).get("train_steps")
    length = f"{steps:,} environment steps" if budget == "estimate_steps" and steps else f"`trainer.epochs={trainer.get('epochs')}`"
    f = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    p = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
    lines = [
        f"### Proxy ranking: task={task}, {len(rows)} architectures, metric {metric}",
        "",
        f"Estimate: `trainer.{budget}={trainer.get(budget)}` ({rows[0].get('estimate_result', {}).get(budget, trainer.get(budget))} in effect) on the estimation network "
        f"({dict(cfg.task.get('estimate_model') or {})}); metric: retrained for {length} "
        f"({dict(cfg.task.get('model') or {})}), data={cfg.data.get('name')}{f' ({cfg.data.env})' if cfg.data.get('env') else ''}, seed={cfg.seed}.",
        "",
        f"| proxy | Kendall τ vs {metric} | p | Spearman ρ vs {metric} | p |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s['label']} | {f(s['kendall_tau'])} | {p(s['kendall_p'])} | {f(s['spearman_rho'])} | {p(s['spearman_p'])} |"
        for s in stats.values()
    ]
    head = ["#", "source", *(f"{proxies[k]} (rank)" for k in proxy_ranks), f"{metric} (rank)", "params", "estimate params", "genotype"]
    lines += ["", "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 3) + "---|"]
    for i, r in enumerate(rows):
        cells = [str(i + 1), r["source"]]
        cells += [f"{r[k]:.4f} ({proxy_ranks[k][i]})" if r.get(k) is not None else "-" for k in proxy_ranks]
        cells += [f"{r['metric']:.4f} ({metric_ranks[i]})", f"{r['params']:,}" if r.get("params") is not None else "-"]
        cells += [f"{r['params_estimate']:,}" if r.get("params_estimate") is not None else "-"]
        cells += ["`" + describe(r["genotype"]).replace("|", "\\|") + "`"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Command: `python bench/proxy_rank.py {' '.join(sys.argv[1:])}`"]
    doc = {
        "task": task,
        "metric": metric,
        "n": len(rows),
        "overrides": overrides,
        "seed": int(cfg.seed),
        "config_sha256": rows[0]["config_sha256"],
        "correlations": stats,
        "architectures": [{**r, f"rank_{metric}": metric_ranks[i]} for i, r in enumerate(rows)],
        "command": f"python bench/proxy_rank.py {' '.join(sys.argv[1:])}",
    }
    return "\n".join(lines), doc


# ---- main


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="classification, detection, segmentation, rl, translation (or a plug-in's task)")
    ap.add_argument("--n", type=int, default=12, help="architectures to measure (at least 3)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random architectures (training uses the config's seed=)")
    ap.add_argument("--jobs", type=int, default=1, help="architectures measured at once, each in its own process with one thread")
    ap.add_argument("--out", default=None, help="log and results.json (default runs/proxy_rank/TASK)")
    ap.add_argument("--table", default=None, help="also write the Markdown report to this file")
    ap.add_argument("--supernet", choices=sorted(SUPERNETS), default=None, help="also score each architecture in a trained supernet")
    ap.add_argument(
        "--early-curve",
        type=int,
        nargs="+",
        default=[],
        metavar="X",
        help="also rank by the retraining's own learning curve, the mean of its points up to X "
        "(tasks whose retraining records one: rl in environment steps, translation in epochs, by negated validation cross-entropy)",
    )
    ap.add_argument("--no-registry", action="store_true", help="random architectures only (no published / registry genotypes)")
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    extra = argv[cut + 1 :]  # zoo overrides, after --
    if args.n < 3:
        die(f"--n {args.n} is invalid; allowed: an integer >= 3 (a rank correlation needs at least 3 architectures)")
    if any(x <= 0 for x in args.early_curve):
        die(f"--early-curve {' '.join(map(str, args.early_curve))} is invalid; allowed: positive steps (rl) or epochs (translation)")
    if args.jobs < 1:
        die(f"--jobs {args.jobs} is invalid; allowed: an integer >= 1")
    if "=" in args.task or args.task.startswith("-"):
        die(f"{args.task!r} is not a task name: the first argument is the task (e.g. classification), overrides go after --")

    overrides = run_overrides(args.task, extra, args.supernet)
    cfg = compose(args.task, overrides, args.supernet)
    from omegaconf import OmegaConf

    from zoo.runners.local import JsonlLog, RunDirectoryBusy, read_log
    from zoo.space.genotype import genotype_key

    run = build_run(cfg)  # every refusal before `out` is touched
    out = Path(args.out or f"runs/proxy_rank/{args.task}").resolve()
    try:
        log = JsonlLog(out / LOG)  # this process is the only writer of `out` until it ends
    except RunDirectoryBusy as e:
        die(str(e))
    if args.jobs == 1 and cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg.threads))
    first = [] if args.no_registry else registry_genotypes(cfg, args.task, run.space)
    archs = pick_architectures(run.space, args.n, args.seed, first)
    digest = result_digest(cfg)
    rdigest = retrain_digest(cfg)
    logged = read_log(log.path)
    done = logged_architectures(logged, "config_sha256", digest)
    retrained = logged_architectures(logged, "retrain_sha256", rdigest)
    todo = [(s, g) for s, g in archs if genotype_key(g) not in done]
    reuse = sum(genotype_key(g) in retrained for _, g in todo)
    print(
        f"proxy_rank: task={args.task}, {len(archs)} architectures ({sum(s != 'random' for s, _ in archs)} from the registry), "
        f"{len(archs) - len(todo)} already in {out / LOG}" + (f", {reuse} more estimated only (retraining logged)" if reuse else ""),
        file=sys.stderr,
        flush=True,
    )
    cfg_plain = OmegaConf.to_container(cfg, resolve=True)
    try:
        failures = measure_all(run, cfg_plain, todo, out, (digest, rdigest), args.jobs, log, len(archs), retrained)
        done = logged_architectures(read_log(log.path), "config_sha256", digest)
        proxies = {"estimate": "search estimate"}
        supernet: dict[str, float] = {}
        if args.supernet is not None:
            ok = [g for _, g in archs if genotype_key(g) in done]
            supernet = supernet_scores(run, cfg, ok, out, log, read_log(log.path))
            proxies["supernet"] = f"{args.supernet} supernet score"
        unit = next((r["retrain_curve_unit"] for r in done.values() if "retrain_curve_unit" in r), None)
        if args.early_curve and unit is None:
            die(f"--early-curve: no logged retraining of task={args.task} recorded a learning curve (rl and translation do)")
        for cut in args.early_curve:
            proxies[f"early_{cut}"] = f"retraining's curve, mean of its points up to {cut:,} {unit}"
        proxies["params"] = "params (final network)"
    except KeyboardInterrupt:
        print(f"\nproxy_rank: interrupted; finished architectures are kept in {out / LOG}: the same command continues", file=sys.stderr)
        raise SystemExit(130) from None
    rows = []
    for source, g in archs:
        r = done.get(genotype_key(g))
        if r is not None:
            early = {f"early_{k}": early_curve(r.get("retrain_curve"), k) for k in args.early_curve}
            rows.append({**r, "source": source, **({"supernet": supernet[r["key"]]} if supernet else {}), **early})
    if len(rows) < 3:
        die(f"only {len(rows)} of {len(archs)} architectures were measured ({'; '.join(failures)}); a rank correlation needs 3")
    text, doc = report(args.task, cfg, rows, proxies, lambda j: run.space.describe(run.space.genotype_from_json(j)), extra)
    doc["failed"] = failures
    from zoo.atomic import save_json_atomic

    save_json_atomic(out / RESULTS, doc)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(text + "\n")
    print(text)
    est = doc["correlations"]["estimate"]
    print(
        f"\nKendall tau (search estimate vs {doc['metric']}) = {est['kendall_tau']}, Spearman rho = {est['spearman_rho']} "
        f"over {len(rows)} architectures -> {out / RESULTS}" + (f", {args.table}" if args.table else ""),
        flush=True,
    )
    if failures:
        print(f"proxy_rank: {len(failures)} architectures failed and are left out (they run again next time)", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # while composing or loading the data: nothing measured yet
        print("\nproxy_rank: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
