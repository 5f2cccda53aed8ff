"""``python -m zoo task=... search=... data=...``: search, retrain, write a checkpoint.

Overrides are checked before Hydra starts the run: an unknown group option, an
unknown key or a bad value ends with one line naming it and what is allowed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # the core groups; tasks add theirs (conf_roots)


def conf_roots() -> list[Path]:
    """The core config folder, then each task package's ``conf/`` (:func:`zoo.plugins.conf_dirs`)."""
    from zoo.plugins import conf_dirs

    return [Path(CONF_DIR), *conf_dirs()]


def search_path_override() -> str:
    """The ``hydra.searchpath`` override that adds the task packages' config folders."""
    from zoo.plugins import conf_dirs

    quoted = ["'file://" + str(d).replace("\\", "\\\\").replace("'", "\\'") + "'" for d in conf_dirs()]
    return f"hydra.searchpath=[{','.join(quoted)}]"


def compose_config(overrides: list[str], return_hydra_config: bool = False) -> Any:
    """The composed config for ``overrides``, with the task packages on the search path (tests, pre-check)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose("config", overrides=[*overrides, search_path_override()], return_hydra_config=return_hydra_config)


_job_label = ""  # in a multirun pre-check: which experiment an error belongs to


def _die(msg: str) -> None:
    print(f"zoo: error: {_job_label}{msg}", file=sys.stderr)
    raise SystemExit(2)


MULTIRUN_FLAGS = ("-m", "--multirun")


def is_multirun(argv: list[str]) -> bool:
    return any(a in MULTIRUN_FLAGS for a in argv) or "hydra.mode=MULTIRUN" in argv


def sweep_jobs(argv: list[str]) -> list[list[str]]:
    """The override lists of the experiments a ``-m`` sweep runs (Hydra's basic sweeper order:
    the cartesian product, last override varying fastest), each as plain ``key=value`` strings."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if "=" in a and not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        choices = [
            [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line] for o in parsed
        ]
    except Exception as e:  # Hydra's parse errors are multi-line; glob() needs the config loader Hydra has only later
        hint = (
            " (glob() sweeps are not supported here: list the options, e.g. search=random,evolution)"
            if "glob(" in " ".join(overrides)
            else ""
        )
        _die(str(e).strip().splitlines()[0] + hint)
        raise
    return [list(job) for job in itertools.product(*choices)]


def precheck_sweep(argv: list[str]) -> None:
    """Each experiment of a ``-m`` sweep passes the same one-line pre-check as a single run, before any starts."""
    global _job_label
    if any(a.startswith("hydra.run.dir=") for a in argv):
        _die("hydra.run.dir is for single runs; with -m the experiments go under hydra.sweep.dir=DIR (one sub-directory each)")
    rest = [a for a in argv if a not in MULTIRUN_FLAGS and not (a.startswith("hydra.") or a.startswith("hydra/"))]
    resumed = any(a.partition("=")[0].lstrip("+") == "resume" and a.partition("=")[2].lower() in ("true", "1", "yes", "on") for a in rest)
    if resumed and not any(a.startswith("hydra.sweep.dir=") for a in argv):
        _die("resume=true with -m needs hydra.sweep.dir=DIR, the directory of the sweep to continue")
    for job in sweep_jobs(rest):
        _job_label = f"[{' '.join(job)}] "
        precheck([a for a in job if not a.startswith("resume=")])
    _job_label = ""


def sweep_summary(sweep_dir: Path, expected: int | None = None) -> tuple[str, bool]:
    """A table of a finished sweep's experiments (their overrides and headline metrics), also
    written to ``sweep_dir/sweep_summary.json``, and whether all ``expected`` experiments finished
    (a launcher that wrote elsewhere, e.g. on other nodes, leaves them missing here)."""
    from omegaconf import OmegaConf

    from zoo.atomic import save_json_atomic

    rows = []
    jobs = sorted((d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    for d in jobs:
        overrides_file = d / ".hydra" / "overrides.yaml"
        overrides = [str(o).removeprefix("++") for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
        overrides = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]
        row: dict[str, Any] = {"job": int(d.name), "dir": str(d), "overrides": overrides}
        metrics = d / "metrics.json"
        if metrics.is_file():
            import json

            m = json.loads(metrics.read_text())
            row["status"] = "finished"
            row["metrics"] = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if m.get("stopped_by"):
                row["status"] = f"finished (stopped by {m['stopped_by']})"
        else:
            row["status"] = "failed" if (d / "error.txt").is_file() else "unfinished"
            if (d / "error.txt").is_file():
                row["error"] = (d / "error.txt").read_text().strip()
        rows.append(row)
    save_json_atomic(sweep_dir / "sweep_summary.json", {"sweep_dir": str(sweep_dir), "experiments": rows})
    shown = ("test_accuracy", "test_acc_200ep", "test_miou", "test_map", "test_return", "params", "search_reward", "search_seconds")
    keys = [k for k in shown if any(k in r.get("metrics", {}) for r in rows)][:4]
    common = [o for o in (rows[0]["overrides"] if rows else []) if all(o in r["overrides"] for r in rows)]
    lines = ["", f"zoo sweep: {len(rows)} experiments -> {sweep_dir} (sweep_summary.json)"]
    if common:
        lines.append(f"  all   {' '.join(common)}")
    for r in rows:
        values = "  ".join(f"{k} {r['metrics'][k]:.4g}" for k in keys if k in r.get("metrics", {}))
        own = " ".join(o for o in r["overrides"] if o not in common) or "(defaults)"
        lines.append(f"  {r['job']:>3}   {own}  {r['status']}  {values or r.get('error', '')}")
    missing = max(0, (expected or 0) - len(rows))
    if missing:
        lines.append(f"  {missing} of the {expected} experiments have no directory in {sweep_dir} (run elsewhere, or not started)")
    ok = not missing and all(r["status"].startswith("finished") for r in rows)
    return "\n".join(lines), ok


def group_options(roots: list[Path]) -> dict[str, list[str]]:
    """Each config group's options across ``roots``; an option defined in two places is an error
    (Hydra would silently take the first), naming both files."""
    groups: dict[str, dict[str, Path]] = {}
    for root in roots:
        for d in sorted(root.iterdir()):
            if d.is_dir():
                for p in sorted(d.glob("*.yaml")):
                    other = groups.setdefault(d.name, {}).setdefault(p.stem, p)
                    if other != p:
                        raise ValueError(f"{d.name}={p.stem} is defined twice: {other} and {p}; a task package must name its options apart")
    return {name: sorted(options) for name, options in sorted(groups.items())}


def _groups() -> dict[str, list[str]]:
    try:
        return group_options(conf_roots())
    except ValueError as e:
        _die(str(e))
        raise


def _group_files(group: str) -> list[Path]:
    return sorted((p for root in conf_roots() for p in (root / group).glob("*.yaml")), key=lambda p: p.stem)


def _other_options_hint(parts: list[str], i: int) -> str:
    """For ``data.root`` under ``data=digits``: the options of that group that do have the key."""
    from omegaconf import OmegaConf

    if i != 1:
        return ""
    group, key = parts[0], parts[1]
    having = [p.stem for p in _group_files(group) if key in OmegaConf.load(p)]
    return f" ({group}.{key} belongs to {group}={', '.join(having)}: pick one with {group}=NAME)" if having else ""


def precheck(argv: list[str]) -> None:
    """Composes the config once with the user's overrides and turns failures into one line."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = [a for a in argv if "=" in a and not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    groups = _groups()
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        if key == "workers":
            _die(
                f"workers={value} is unknown: candidates in parallel are runner.workers now; allowed: runner=process runner.workers={value} (or runner=ray)"
            )
        if key in groups and value not in groups[key]:
            _die(f"{key}={value} is unknown; allowed {key} options: {', '.join(groups[key])}")
    searchpath = search_path_override()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        base = compose("config", overrides=[*(o for o in overrides if o.partition("=")[0] in groups), searchpath])
        for o in overrides:
            key = o.partition("=")[0]
            if key.startswith(("+", "~")) or key in groups:
                continue
            node, parts = base, key.split(".")
            for i, part in enumerate(parts):
                if not OmegaConf.is_dict(node) or part not in node:
                    where = ".".join(parts[:i]) or "the top level"
                    allowed = ", ".join(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else "none (not a group)"
                    _die(f"unknown option {key!r}: {where} has no key {part!r}; allowed: {allowed}{_other_options_hint(parts, i)}")
                node = node[part]
        try:
            cfg = compose("config", overrides=[*overrides, searchpath])
        except Exception as e:  # Hydra's own parse/compose errors are multi-line
            _die(str(e).strip().splitlines()[0])
    try:
        from zoo.pipeline import build_checks
        from zoo.rundir import check_run_dir

        build_checks(cfg)
        run_dirs = [a.partition("=")[2] for a in argv if a.startswith("hydra.run.dir=")]
        if cfg.get("mode", "search") == "search":
            if run_dirs:
                check_run_dir(cfg, Path(run_dirs[-1]))
            elif cfg.resume:
                _die("resume=true needs hydra.run.dir=DIR, the directory of the run to continue")
    except (ValueError, FileExistsError) as e:
        _die(str(e))


def print_help(argv: list[str]) -> None:
    """Hydra's ``--help`` lists only the primary folder's groups; this lists the tasks' too."""
    from omegaconf import OmegaConf

    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    help_cfg = compose_config(overrides, return_hydra_config=True).hydra.help
    cfg = compose_config(overrides)
    groups = "\n".join(f"{name}: {', '.join(options)}" for name, options in _groups().items())
    print(
        f"{help_cfg.header.rstrip()}\n\n== Configuration groups ==\nCompose your configuration from those groups (group=option)\n\n"
        f"{groups}\n\n== Config ==\nOverride anything in the config (foo.bar=value)\n\n{OmegaConf.to_yaml(cfg)}\n{help_cfg.footer.rstrip()}"
    )


def with_checkpoint_task(argv: list[str]) -> list[str]:
    """``mode=play`` without ``task=``: the task the checkpoint records is added (a play runs in its task's environment)."""
    args = {a.partition("=")[0]: a.partition("=")[2] for a in argv if "=" in a and not a.startswith("-")}
    if args.get("mode") == "play" and "task" not in args:
        from zoo.play import checkpoint_task_name

        try:
            task = checkpoint_task_name(args)
        except ValueError as e:  # ConfigError, HubError: a checkpoint that is missing, unreadable or of a task without a player
            _die(str(e))
        return [*argv, f"task={task}"]
    return argv


def main(argv: list[str] | None = None) -> None:
    """The command line; ``argv`` (default ``sys.argv[1:]``) replaces the arguments Hydra reads."""
    if argv is not None:
        sys.argv[1:] = argv
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from zoo.plugins import PluginError, load_plugins

    if any(a in ("--help", "-h") for a in sys.argv[1:]):  # config files only: no task package, no torch
        try:
            return print_help(with_checkpoint_task(sys.argv[1:]))
        except PluginError as e:
            _die(str(e))
    try:
        load_plugins()  # a broken task package: one line naming it, before anything else
    except PluginError as e:
        _die(str(e))
    sys.argv[1:] = with_checkpoint_task(sys.argv[1:])
    try:  # under torchrun, ranks > 0 run Hydra in a scratch directory (zoo.runners.distributed)
        from zoo.runners.distributed import follower_argv

        sys.argv[1:] = follower_argv(sys.argv[1:])
    except ValueError as e:
        _die(str(e))
    multirun = is_multirun(sys.argv[1:])
    sweep_dir = None
    if multirun:
        given = [a.partition("=")[2] for a in sys.argv[1:] if a.startswith("hydra.sweep.dir=")]
        if not given:  # chosen here, so the summary knows where the experiments are whatever launcher runs them
            import time

            given = [f"outputs/multirun/{time.strftime('%Y-%m-%d_%H-%M-%S')}"]
            sys.argv.append(f"hydra.sweep.dir={given[0]}")
        sweep_dir = Path(given[-1])
    if not any(a in ("--hydra-help", "--info", "--cfg", "-c") or a.startswith("--info") for a in sys.argv[1:]):
        precheck_sweep(sys.argv[1:]) if multirun else precheck(sys.argv[1:])
    if multirun:
        groups = _groups()
        # Hydra composes a sweep's master config without the swept options, so a key that only the
        # swept group has (search.budget under search=random,evolution) would fail there: `++` adds it
        # in the master and sets it in each job, whose keys the pre-check has already checked
        sys.argv[1:] = [
            f"++{a}" if "=" in a and not a.startswith(("-", "+", "~", "hydra")) and a.partition("=")[0] not in groups else a
            for a in sys.argv[1:]
        ]
    # the task packages' groups, for Hydra's own composition: placed beside the user's overrides, since
    # argparse refuses a second group of positional arguments after a flag (`task=detection --cfg job`)
    first = next((i for i, a in enumerate(sys.argv) if i and "=" in a and not a.startswith("-")), len(sys.argv))
    sys.argv.insert(first, search_path_override())

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _run(cfg: DictConfig) -> None:
        from hydra.types import RunMode

        from zoo.pipeline import execute
        from zoo.registry import UnknownNameError

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        try:
            if multirun and cfg.get("mode", "search") == "search":
                from zoo.rundir import check_run_dir

                check_run_dir(cfg, run_dir)  # a resumed sweep: each job continues only the experiment it started
            from zoo.constraints import Family
            from zoo.family import run_family

            family = Family.from_cfg(cfg) if cfg.get("mode", "search") == "search" else None
            if family is not None:
                run_family(cfg, run_dir, family)
            else:
                execute(cfg, run_dir)
        except Exception as e:
            if multirun:  # the sweep goes on; its summary reports this experiment as failed
                (run_dir / "error.txt").write_text(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}\n")
                print(f"zoo: error in {run_dir}: {e}", file=sys.stderr)
                if not isinstance(e, (ValueError, UnknownNameError, FileExistsError)):
                    import traceback

                    traceback.print_exc()
                return
            if isinstance(e, (ValueError, UnknownNameError, FileExistsError)):
                _die(str(e))
            raise
        except KeyboardInterrupt:
            again = "-m and the same options with hydra.sweep.dir=<the sweep directory>" if multirun else f"hydra.run.dir={run_dir}"
            print(
                f"\nzoo: interrupted; finished work is kept in {run_dir}. Continue with the same options and {again} resume=true",
                file=sys.stderr,
            )
            raise SystemExit(130) from None

    _run()
    if sweep_dir is not None and sweep_dir.is_dir():
        expected = len(sweep_jobs(sys.argv[1:]))  # it reads the key=value overrides only, hydra's aside
        text, ok = sweep_summary(sweep_dir, expected)
        print(text, flush=True)
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
