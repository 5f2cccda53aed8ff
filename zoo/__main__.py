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


def _die(msg: str) -> None:
    print(f"zoo: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


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


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from zoo.plugins import PluginError, load_plugins

    try:
        load_plugins()  # a broken task package: one line naming it, before anything else
    except PluginError as e:
        _die(str(e))
    sys.argv[1:] = with_checkpoint_task(sys.argv[1:])
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        return print_help(sys.argv[1:])
    if not any(a in ("--hydra-help", "--info", "--cfg", "-c") or a.startswith("--info") for a in sys.argv[1:]):
        precheck(sys.argv[1:])
    # the task packages' groups, for Hydra's own composition: placed beside the user's overrides, since
    # argparse refuses a second group of positional arguments after a flag (`task=detection --cfg job`)
    first = next((i for i, a in enumerate(sys.argv) if i and "=" in a and not a.startswith("-")), len(sys.argv))
    sys.argv.insert(first, search_path_override())

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _run(cfg: DictConfig) -> None:
        from zoo.pipeline import execute
        from zoo.registry import UnknownNameError

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            execute(cfg, run_dir)
        except (ValueError, UnknownNameError, FileExistsError) as e:
            _die(str(e))
        except KeyboardInterrupt:
            print(
                f"\nzoo: interrupted; finished work is kept in {run_dir}. Continue with the same options and "
                f"hydra.run.dir={run_dir} resume=true",
                file=sys.stderr,
            )
            raise SystemExit(130) from None

    _run()


if __name__ == "__main__":
    main()
