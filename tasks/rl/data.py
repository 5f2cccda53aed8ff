"""Gymnasium environments for the RL task: one-line checks of an id and its spaces, and PPO's
per-environment defaults.

:data:`RL_ZOO_PPO` holds rl-zoo3's tuned PPO hyper-parameters (Raffin, "RL Baselines3 Zoo",
``hyperparams/ppo.yml``) for the environments they are known for; any other id gets
stable-baselines3's PPO defaults. ``trainer.*`` values override both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.task import DataError

SUPPORTED = "observations Box or Discrete (from 0), actions Discrete (from 0) or Box (one dimension)"

# stable-baselines3's PPO defaults (PPO.__init__) and the run length used when nothing else says
SB3_PPO: dict[str, Any] = {
    "n_envs": 1,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "lr": 3e-4,
    "lr_schedule": "constant",
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "steps": 200_000,
}

# rl-zoo3 hyperparams/ppo.yml; "linear" = rl-zoo3's lin_ schedules (learning rate and clip range decay to 0)
RL_ZOO_PPO: dict[str, dict[str, Any]] = {
    "CartPole-v1": {
        "n_envs": 8,
        "steps": 100_000,
        "n_steps": 32,
        "batch_size": 256,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "n_epochs": 20,
        "ent_coef": 0.0,
        "lr": 1e-3,
        "lr_schedule": "linear",
        "clip_range": 0.2,
    },
    # rl-zoo3 adds gSDE (use_sde, sde_sample_freq 4) here; this task samples plain Gaussian actions
    "Pendulum-v1": {
        "n_envs": 4,
        "steps": 100_000,
        "n_steps": 1024,
        "gae_lambda": 0.95,
        "gamma": 0.9,
        "n_epochs": 10,
        "ent_coef": 0.0,
        "lr": 1e-3,
        "clip_range": 0.2,
    },
    # rl-zoo3 also normalises observations and rewards (VecNormalize) here; this task does not
    "Acrobot-v1": {"n_envs": 16, "steps": 1_000_000, "n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
}


def ppo_settings(env_id: str, trainer: Any) -> dict[str, Any]:
    """PPO's settings for ``env_id``: SB3's defaults, rl-zoo3's tuned values, then non-null ``trainer.*``."""
    out = {**SB3_PPO, **RL_ZOO_PPO.get(env_id, {})}
    for key in SB3_PPO:
        v = trainer.get(key) if trainer is not None else None
        if v is not None:
            out[key] = v
    return out


@dataclass(frozen=True)
class EnvInfo:
    """What the networks need to know of an environment."""

    env_id: str
    obs_dim: int  # the flat observation fed to the policy (Discrete: one-hot size)
    n_actions: int  # Discrete: actions; Box: action dimensions
    discrete: bool
    max_episode_steps: int | None
    reward_threshold: float | None
    observation_space: str = "Box"  # Box (flattened) or Discrete (one-hot)
    action_low: list[float] | None = None  # Box actions: the bounds actions are clipped to
    action_high: list[float] | None = None

    def spaces(self) -> str:
        """The spaces in words, for messages."""
        acts = f"{self.n_actions} Discrete actions" if self.discrete else f"Box actions of {self.n_actions} dimensions"
        return f"{self.observation_space} observations of size {self.obs_dim} and {acts}"

    def matches(self, model: dict[str, Any], data: dict[str, Any]) -> bool:
        """Whether a policy recorded with ``model`` args and ``data`` description takes this environment's spaces."""
        return (int(model["obs_dim"]), int(model["n_actions"]), bool(model["discrete"]), data.get("observation_space", "Box")) == (
            self.obs_dim,
            self.n_actions,
            self.discrete,
            self.observation_space,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "env": self.env_id,
            "obs_dim": self.obs_dim,
            "observation_space": self.observation_space,
            "action_space": "Discrete" if self.discrete else "Box",
            "n_actions": self.n_actions,
            "max_episode_steps": self.max_episode_steps,
            "reward_threshold": self.reward_threshold,
        }


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id)`` with one-line :class:`DataError`s for an unknown id or a missing extra."""
    import gymnasium as gym

    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise DataError(f"data.env={env_id} needs a package that is not installed: {str(e).strip().splitlines()[0]}") from None
    except ImportError as e:  # an entry point whose package is missing (phys2d/*, tabular/* need jax), or `module:Env-v0`'s module
        missing = f"No module named {e.name!r}" if e.name else str(e).strip().splitlines()[0]
        raise DataError(f"data.env={env_id} needs a module that cannot be imported: {missing}") from None
    except gym.error.Error as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(
            f"data.env={env_id} is not a registered gymnasium environment ({first}); e.g. CartPole-v1, Pendulum-v1, Acrobot-v1 "
            "(gymnasium.pprint_registry() lists them)"
        ) from None


def env_info(env_id: str) -> EnvInfo:
    """Checks ``env_id`` and its spaces (one line naming what is unsupported) and describes them."""
    from gymnasium import spaces

    env = make_env(env_id)
    try:
        obs, act = env.observation_space, env.action_space
        spec = env.spec
    finally:
        env.close()
    if isinstance(obs, spaces.Box):
        obs_dim = int(np.prod(obs.shape))
    elif isinstance(obs, spaces.Discrete) and int(obs.start) == 0:
        obs_dim = int(obs.n)
    else:
        raise DataError(
            f"data.env={env_id} has a {type(obs).__name__} observation space, which task=rl does not support; allowed: {SUPPORTED}"
        )
    low = high = None
    if isinstance(act, spaces.Discrete) and int(act.start) == 0:
        n_actions, discrete = int(act.n), True
    elif isinstance(act, spaces.Box) and len(act.shape) == 1:
        n_actions, discrete = int(act.shape[0]), False
        low, high = [float(v) for v in act.low], [float(v) for v in act.high]
    else:
        what = f"{type(act).__name__}(start={act.start})" if isinstance(act, spaces.Discrete) else type(act).__name__
        raise DataError(f"data.env={env_id} has a {what} action space, which task=rl does not support; allowed: {SUPPORTED}")
    if isinstance(obs, spaces.Box) and len(obs.shape) == 3:
        raise DataError(
            f"data.env={env_id} has image observations {obs.shape}, which task=rl does not support yet; allowed: {SUPPORTED} (flat)"
        )
    return EnvInfo(
        env_id,
        obs_dim,
        n_actions,
        discrete,
        spec.max_episode_steps if spec is not None else None,
        spec.reward_threshold if spec is not None else None,
        type(obs).__name__,
        low,
        high,
    )
