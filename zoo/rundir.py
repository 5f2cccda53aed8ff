"""Run-directory bookkeeping: the config a directory was started with, the digest of a finished
run's config, and the checks that keep one experiment per directory.

``run_config.json`` holds the options a run directory was started (or last resumed) with;
the CLI's pre-check (:func:`check_run_dir`, before Hydra writes ``.hydra/``) refuses a second
run there without ``resume=true`` and a resume whose options differ (other than
``search.budget``). ``metrics.json`` carries ``config_sha256`` (:func:`config_digest`), so
``resume=true`` on a finished run with the same config only prints its summary. Neither holds the
:data:`RUN_CONTROL_KEYS` (``device`` among them: a run may continue on another device).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.atomic import save_json_atomic

# how a run runs, not what it computes; ``device``: a run may resume on another device (a CPU run finished on a GPU)
RUN_CONTROL_KEYS = ("resume", "progress", "threads", "runner", "device")
RESULT_RUNNER_KEYS = ("workers",)  # ...except the batch a multi-trial search asks for, which shapes the search


RESUME_MAY_CHANGE = ("search.budget",)  # a multi-trial search may be extended on resume (search.time_budget is outside the digest)
RUN_CONFIG = "run_config.json"  # the config a run directory was started (or last resumed) with


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def _result_config(cfg: DictConfig) -> dict[str, Any]:
    """The flattened options that decide a search run's result (not how it runs, not fine-tuning's)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    other_modes = ("hydra", "finetune", "play", "hub", "checkpoint")  # Hydra's own, and what fine-tuning and playing read
    result = {k: v for k, v in data.items() if k not in RUN_CONTROL_KEYS and k not in other_modes}  # type: ignore[union-attr]
    # one candidate at a time unless said otherwise: a run from before the runner group compares as runner.workers=1
    runner = data.get("runner") if isinstance(data.get("runner"), dict) else {"workers": 1}  # type: ignore[union-attr]
    result["runner"] = {k: v for k, v in runner.items() if k in RESULT_RUNNER_KEYS}
    if isinstance(result.get("search"), dict):  # a wall-clock cap, not a setting of the search: resuming may extend it
        result["search"] = {k: v for k, v in result["search"].items() if k != "time_budget"}
    return _flat(result)


def config_digest(cfg: DictConfig) -> str:
    """sha256 of :func:`_result_config`: equal digests, equal results."""
    return hashlib.sha256(json.dumps(_result_config(cfg), sort_keys=True, default=str).encode()).hexdigest()


def _comparable(cfg: DictConfig) -> dict[str, Any]:
    return {k: v for k, v in _result_config(cfg).items() if k not in RESUME_MAY_CHANGE}


def check_run_dir(cfg: DictConfig, run_dir: Path) -> None:
    """Before Hydra writes anything into ``run_dir``: a run already there is continued only with
    ``resume=true`` and the config it was started with (``search.budget`` may grow), so two
    experiments never mix in one directory. A directory that a live run is writing is refused
    here too, before Hydra rewrites its ``.hydra/`` (this process keeps the lock for its own run)."""
    if run_dir.is_dir():
        from zoo.runners.local import hold_run_lock

        hold_run_lock(run_dir)
    started = run_dir / RUN_CONFIG
    used = started.is_file() or (run_dir / "search_log.jsonl").is_file()
    if not cfg.resume:
        if used:
            raise FileExistsError(f"{run_dir} holds a run already; pass resume=true to continue it or use a new hydra.run.dir")
        return
    if not started.is_file():
        return  # nothing recorded (a fresh directory, or a run from before run_config.json): nothing to compare
    try:
        before = json.loads(started.read_text())
    except ValueError:
        raise ValueError(f"{started} is not valid JSON; delete it to resume without the config check") from None
    now = _comparable(cfg)
    for key in sorted(set(before) | set(now), key=lambda k: (not k.endswith(".name"), k)):  # a changed group option first
        if before.get(key, "<absent>") != now.get(key, "<absent>"):
            raise ValueError(
                f"resume=true: {key}={now.get(key, '<absent>')!r} differs from the run in {run_dir} ({before.get(key, '<absent>')!r}); "
                "resume with that run's options or use a new hydra.run.dir"
            )


def write_run_config(cfg: DictConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json_atomic(run_dir / RUN_CONFIG, _comparable(cfg))


def finished_metrics(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run that already finished in ``run_dir`` with this config, else ``None``."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except ValueError:
        return None
    return metrics if metrics.get("config_sha256") == config_digest(cfg) else None
