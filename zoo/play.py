"""Running a trained model in its environment (``python -m zoo mode=play checkpoint=...``).

Tasks whose models act (the RL task) register a player with ``@player("task")``: given the
loaded bundle (on the run's ``device``) and the config, it runs ``play.episodes`` episodes, prints
the returns' mean and standard deviation and writes what it recorded into the run directory. The
task is read from the checkpoint, so ``task=`` may be left out.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from zoo.atomic import save_json_atomic
from zoo.config_values import POSITIVE_INT, ConfigError, Flag, Number, check_values
from zoo.device import resolve_device
from zoo.registry import Registry

Player = Callable[[Any, dict[str, Any], DictConfig, Path], dict[str, Any]]  # (model, bundle config, cfg, run dir) -> metrics
PLAYERS: Registry[Player] = Registry("player", plugins=True)
PLAY_SPECS = {"episodes": POSITIVE_INT, "seed": Number(integer=True, low=0), "gif": Flag(), "deterministic": Flag()}


def player(task: str) -> Callable[[Player], Player]:
    """Registers the player of ``task``."""

    def deco(fn: Player) -> Player:
        PLAYERS.add(task, fn)
        return fn

    return deco


def playable_task(cfg: Any) -> str:
    """The task ``cfg.checkpoint`` records, read without downloading; one-line :class:`ConfigError`
    for a checkpoint that is missing, cannot be read or is of a task without a player."""
    from zoo.finetune import checkpoint_task

    task = checkpoint_task(cfg, "play")
    if task not in PLAYERS:
        raise ConfigError(
            f"checkpoint={cfg.checkpoint} is a {task} model, which has no play mode; allowed with mode=play: models of {', '.join(PLAYERS.names())}"
        )
    return task


def check_play(cfg: DictConfig) -> None:
    """Everything checkable before the checkpoint is loaded: a readable checkpoint of a task that plays, the play values."""
    if cfg.get("play") is None:
        raise ConfigError("mode=play needs the play: config section (zoo/conf/play/default.yaml)")
    check_values(cfg.play, PLAY_SPECS, "play")
    resolve_device(cfg.get("device", "auto"))
    task = playable_task(cfg)
    if cfg.task.name != task:
        raise ConfigError(f"checkpoint={cfg.checkpoint} is a {task} model, not {cfg.task.name}; leave task= out or pass task={task}")


def run_play(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    from zoo.finetune import _registries
    from zoo.hub.api import resolve_bundle
    from zoo.hub.bundle import load_bundle

    check_play(cfg)  # the checkpoint's task is the config's
    bundle_dir, _ = resolve_bundle(str(cfg.checkpoint), _registries(cfg), progress=bool(cfg.progress))
    model, config = load_bundle(bundle_dir)
    model.to(resolve_device(cfg.get("device", "auto")))  # loaded on the CPU; players run it where it is
    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = PLAYERS.get(cfg.task.name)(model, config, cfg, run_dir)
    metrics["play_seconds"] = round(time.time() - started, 1)
    save_json_atomic(run_dir / "play.json", metrics)
    lines = ["", f"zoo play finished in {metrics['play_seconds']:.0f}s -> {run_dir}", f"  checkpoint {cfg.checkpoint} ({bundle_dir})"]
    for k, v in metrics.items():
        if k != "play_seconds" and not isinstance(v, (list, dict)):
            lines.append(f"  {k:<18}{v:.2f}" if isinstance(v, float) else f"  {k:<18}{v}")
    print("\n".join(lines), file=sys.stdout, flush=True)
    return metrics


def checkpoint_task_name(argv: dict[str, str]) -> str:
    """:func:`playable_task` of ``checkpoint=`` (and ``hub.registry=``) in the command-line ``argv`` (key -> value)."""
    from omegaconf import OmegaConf

    return playable_task(OmegaConf.create({"checkpoint": argv.get("checkpoint"), "hub": {"registry": argv.get("hub.registry")}}))
