"""Watching a policy: episodes with their returns (``mode=play``), one episode as a GIF, learning curves as a PNG."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from tasks.rl.data import make_env
from zoo.play import player


def record_gif(policy: Any, env_id: str, path: str | Path, seed: int = 0, max_frames: int = 300, width: int = 320) -> bool:
    """One deterministic episode rendered with ``render_mode="rgb_array"`` to an animated GIF (every
    k-th frame so that at most ``max_frames`` are kept, scaled to ``width`` pixels); False when the
    environment cannot render."""
    import os
    import warnings

    from PIL import Image

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen, with no display or sound device
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pygame's own pkg_resources deprecation warning on import
        try:
            import pygame  # noqa: F401  (classic-control rendering)
        except ImportError:
            pass
    import gymnasium as gym

    from zoo.task import DataError

    try:
        env = make_env(env_id, render_mode="rgb_array")
    except (DataError, gym.error.Error, TypeError) as e:  # an environment that does not take render_mode="rgb_array"
        print(
            f"zoo: no episode.gif: {env_id} cannot render frames ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
            file=sys.stderr,
        )
        return False
    frames, total = [], 0.0
    try:
        obs, _ = env.reset(seed=seed)
        first = env.render()
        if first is None:
            return False
        frames.append(first)
        done = False
        while not done:
            action, _ = policy.predict(obs[None] if np.ndim(obs) else np.asarray([obs]), deterministic=True)
            obs, r, terminated, truncated, _ = env.step(action[0])
            total += float(r)
            done = terminated or truncated
            frames.append(env.render())
    except (gym.error.DependencyNotInstalled, ImportError) as e:  # rendering needs pygame (gymnasium[classic-control]) or another extra
        print(f"zoo: no episode.gif: {env_id} cannot render frames ({str(e).splitlines()[0]})", file=sys.stderr)
        return False
    finally:
        env.close()
    step = max(1, -(-len(frames) // max_frames))
    images = []
    for f in frames[::step]:
        im = Image.fromarray(np.asarray(f, dtype=np.uint8))
        resample = Image.Resampling.NEAREST if im.width < 64 else Image.Resampling.BICUBIC  # MinAtar's 10x10 frames stay crisp cells
        images.append(im.resize((width, max(1, round(im.height * width / im.width))), resample))
    images[0].save(path, save_all=True, append_images=images[1:], duration=40 * step, loop=0, optimize=True)
    return True


def draw_curves(curves: dict[str, list[dict[str, Any]]], threshold: float | None, path: str | Path, env_id: str) -> None:
    """Deterministic evaluation return vs environment steps, one line per model, the threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, curve in curves.items():
        if curve:
            ax.plot([c["steps"] for c in curve], [c["eval_return"] for c in curve], "-o", ms=3, label=name)
    if threshold is not None:
        ax.axhline(threshold, ls="--", color="0.4", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.set_title(f"PPO on {env_id}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def recorded_spaces(config: dict[str, Any]) -> str:
    """The spaces a bundle's policy takes, in the words of :meth:`tasks.rl.data.EnvInfo.spaces`."""
    m, d = config["model"], config.get("data") or {}
    acts = f"{m['n_actions']} Discrete actions" if m["discrete"] else f"Box actions of {m['n_actions']} dimensions"
    return f"{d.get('observation_space', 'Box')} observations of size {m['obs_dim']} and {acts}"


def _env_override(cfg: Any) -> str | None:
    """``data.env`` when the user gave it on the command line (else the play runs in the checkpoint's environment)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        given = [o for o in HydraConfig.get().overrides.task if o.startswith("data.env=")]
        return str(cfg.data.env) if given else None
    except ValueError:  # not under Hydra: the config says what to play
        return str(cfg.data.env)


@player("rl")
def play_rl(model: Any, config: dict[str, Any], cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``play.episodes`` episodes of the checkpoint's policy; the returns, their mean and std; ``episode.gif``."""
    from tasks.rl.data import env_info
    from tasks.rl.integrations.sb3 import to_ppo
    from tasks.rl.metrics import evaluate
    from zoo.config_values import ConfigError

    env_id = _env_override(cfg) or str(config["data"]["env"])
    info = env_info(env_id)
    if not info.matches(config["model"], config.get("data") or {}):
        raise ConfigError(f"data.env={env_id} has {info.spaces()}; checkpoint={cfg.checkpoint} takes {recorded_spaces(config)}")
    ppo = to_ppo((model, config), env_id)
    p = cfg.play
    ppo.set_random_seed(int(p.seed))  # sampled actions (play.deterministic=false) repeat too
    policy = ppo.policy
    returns = evaluate(policy, env_id, int(p.episodes), int(p.seed), deterministic=bool(p.deterministic))
    out: dict[str, Any] = {
        "env": env_id,
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "returns": returns,
    }
    if bool(p.gif) and record_gif(policy, env_id, Path(run_dir) / "episode.gif", seed=int(p.seed)):
        out["gif"] = "episode.gif"
    return out
