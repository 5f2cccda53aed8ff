"""Gymnasium environments for the RL task: one-line checks of an id and its spaces, PPO's
per-environment defaults, and the MinAtar games as gymnasium environments.

:data:`RL_ZOO_PPO` holds rl-zoo3's tuned PPO hyper-parameters (Raffin, "RL Baselines3 Zoo",
``hyperparams/ppo.yml``) for the environments they are known for; the MinAtar games take rl-zoo3's
Atari settings (:data:`PIXEL_PPO`); any other id gets stable-baselines3's PPO defaults. ``trainer.*``
values override them.

Image observations follow stable-baselines3's conventions: networks read them channel-first; an SB3
image space (``uint8`` in [0, 255], ``is_image_space``) is moved channel-first by SB3
(``VecTransposeImage``, ``maybe_transpose``) and divided by 255 (``normalize_images``); any other
three-dimensional Box must already be channel-first and is read as it is. MinAtar (Young & Tian,
"MinAtar: An Atari-Inspired Testbed for Thorough and Reproducible Reinforcement Learning
Experiments", arXiv:1903.03176) gives 10x10 binary planes, one per object kind: :func:`make_minatar`
serves them channel-first as ``uint8`` 0/1 with ``high=1``, which SB3 does not take for a 0-255
image, so nothing divides them by 255. The ``MinAtar/<Game>-v0`` (all six actions) and ``-v1``
(the game's minimal action set) ids are registered here when first used (gymnasium 1.x no longer
loads minatar's own ``gymnasium.envs`` entry point); minatar is imported only then.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.task import DataError

SUPPORTED = (
    "observations Box (flat, or images: uint8 in 0..255 either layout, or channel-first) or Discrete (from 0), "
    "actions Discrete (from 0) or Box (one dimension)"
)
MINATAR_PIP = "pip install --no-deps minatar==1.0.15"
MINATAR_GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
# MinAtar sets no episode limit (a policy that never loses Breakout plays forever); gymnasium's TimeLimit cuts
# episodes here, as truncations
MINATAR_MAX_STEPS = 10_000

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


# rl-zoo3's `atari` entry (CnnPolicy on 84x84 frames), for the MinAtar games; 10M steps there, fewer here
PIXEL_PPO: dict[str, Any] = {
    "n_envs": 8,
    "steps": 200_000,
    "n_steps": 128,
    "n_epochs": 4,
    "batch_size": 256,
    "lr": 2.5e-4,
    "lr_schedule": "linear",
    "clip_range": 0.1,
    "vf_coef": 0.5,
    "ent_coef": 0.01,
}


def is_minatar(env_id: str) -> bool:
    return env_id.startswith("MinAtar/")


def ppo_settings(env_id: str, trainer: Any) -> dict[str, Any]:
    """PPO's settings for ``env_id``: SB3's defaults, rl-zoo3's tuned values, then non-null ``trainer.*``."""
    out = {**SB3_PPO, **(PIXEL_PPO if is_minatar(env_id) else RL_ZOO_PPO.get(env_id, {}))}
    for key in SB3_PPO:
        v = trainer.get(key) if trainer is not None else None
        if v is not None:
            out[key] = v
    return out


@dataclass(frozen=True)
class EnvInfo:
    """What the networks need to know of an environment."""

    env_id: str
    obs_dim: int  # the flat observation fed to the policy (Discrete: one-hot size; images: C * H * W)
    n_actions: int  # Discrete: actions; Box: action dimensions
    discrete: bool
    max_episode_steps: int | None
    reward_threshold: float | None
    observation_space: str = "Box"  # Box (flattened) or Discrete (one-hot)
    action_low: list[float] | None = None  # Box actions: the bounds actions are clipped to
    action_high: list[float] | None = None
    obs_shape: tuple[int, int, int] | None = None  # image observations: (C, H, W), channel-first as the policy reads them
    scaled: bool = False  # image observations SB3 divides by 255 (uint8 in [0, 255]); others are read as they are

    @property
    def image(self) -> bool:
        return self.obs_shape is not None

    def spaces(self) -> str:
        """The spaces in words, for messages."""
        acts = f"{self.n_actions} Discrete actions" if self.discrete else f"Box actions of {self.n_actions} dimensions"
        if self.image:
            return f"image observations {'x'.join(map(str, self.obs_shape or ()))} (channels first) and {acts}"
        return f"{self.observation_space} observations of size {self.obs_dim} and {acts}"

    def matches(self, model: dict[str, Any], data: dict[str, Any]) -> bool:
        """Whether a policy recorded with ``model`` args and ``data`` description takes this environment's spaces."""
        shape = model.get("obs_shape")
        return (
            int(model["obs_dim"]),
            int(model["n_actions"]),
            bool(model["discrete"]),
            data.get("observation_space", "Box"),
            tuple(int(v) for v in shape) if shape is not None else None,
        ) == (self.obs_dim, self.n_actions, self.discrete, self.observation_space, self.obs_shape)

    def describe(self) -> dict[str, Any]:
        out = {
            "env": self.env_id,
            "obs_dim": self.obs_dim,
            "observation_space": self.observation_space,
            "action_space": "Discrete" if self.discrete else "Box",
            "n_actions": self.n_actions,
            "max_episode_steps": self.max_episode_steps,
            "reward_threshold": self.reward_threshold,
        }
        if self.image:
            out.update({"obs_shape": list(self.obs_shape or ()), "obs_scaled_by": 255 if self.scaled else 1})
        return out


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id)`` with one-line :class:`DataError`s for an unknown id or a missing extra
    (a ``MinAtar/`` id registers the MinAtar games first, and needs minatar installed)."""
    import gymnasium as gym

    ensure_registered(env_id)
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
            f"data.env={env_id} is not a registered gymnasium environment ({first}); e.g. CartPole-v1, Pendulum-v1, Acrobot-v1, "
            f"MinAtar/Breakout-v1 (gymnasium.pprint_registry() lists them)"
        ) from None


def ensure_registered(env_id: str) -> None:
    """Registers the ids this module adds (``MinAtar/...``) before ``gymnasium.make`` (or SB3's ``make_vec_env``)
    looks ``env_id`` up; a ``MinAtar/`` id without minatar installed is one :class:`DataError` line."""
    if is_minatar(env_id):
        import importlib.util

        if importlib.util.find_spec("minatar") is None:
            raise DataError(f"data.env={env_id} needs the minatar package, which is not installed: {MINATAR_PIP}")
        register_minatar()


def image_shape(obs: Any) -> tuple[tuple[int, int, int], bool] | None:
    """For a three-dimensional Box: its shape channel-first and whether SB3 divides it by 255 (an SB3 image
    space, uint8 in [0, 255], which SB3 moves channel-first when it is not); None for any other space, and
    for a channel-last Box SB3 does not take for an image (nothing would move its channels first)."""
    from gymnasium import spaces
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    if not (isinstance(obs, spaces.Box) and len(obs.shape) == 3):
        return None
    shape = tuple(int(v) for v in obs.shape)
    if is_image_space(obs):
        first = is_image_space_channels_first(obs)
        return (shape if first else (shape[2], shape[0], shape[1])), True  # type: ignore[return-value]
    if int(np.argmin(shape)) == 0:
        return shape, False  # type: ignore[return-value]
    return None


def env_info(env_id: str) -> EnvInfo:
    """Checks ``env_id`` and its spaces (one line naming what is unsupported) and describes them."""
    from gymnasium import spaces

    env = make_env(env_id)
    try:
        obs, act = env.observation_space, env.action_space
        spec = env.spec
    finally:
        env.close()
    image = None
    if isinstance(obs, spaces.Box) and len(obs.shape) == 3:
        image = image_shape(obs)
        if image is None:
            raise DataError(
                f"data.env={env_id} has image observations {tuple(obs.shape)} of {obs.dtype} with the channels last, which "
                f"task=rl does not support; allowed: {SUPPORTED}"
            )
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
        image[0] if image else None,
        bool(image and image[1]),
    )


@functools.lru_cache(maxsize=64)
def has_image_observations(env_id: str | None) -> bool:
    """Whether ``env_id``'s observations are images (what the ``policy`` space searches for it); False for
    any environment that cannot be made (the task's set-up then reports why, in one line)."""
    if not env_id:
        return False
    try:
        return env_info(str(env_id)).image
    except DataError:
        return False


# ---- MinAtar (Young & Tian 2019, arXiv:1903.03176) as gymnasium environments


def register_minatar() -> None:
    """Registers ``MinAtar/<Game>-v0`` (six actions) and ``-v1`` (the minimal action set) for the five games,
    replacing minatar's own registration (channel-last ``bool`` planes) where something loaded it. Nothing is
    imported from minatar until one is made (:func:`make_env` checks first that it is installed)."""
    import gymnasium as gym

    for name, game in MINATAR_GAMES.items():
        for version, minimal in (("v0", False), ("v1", True)):
            env_id = f"MinAtar/{name}-{version}"
            spec = gym.registry.get(env_id)
            if spec is not None and spec.entry_point == MINATAR_ENTRY:
                continue
            gym.registry.pop(env_id, None)
            gym.register(
                env_id, entry_point=MINATAR_ENTRY, kwargs={"game": game, "minimal_actions": minimal}, max_episode_steps=MINATAR_MAX_STEPS
            )


MINATAR_ENTRY = "tasks.rl.data:make_minatar"


def make_minatar(game: str, minimal_actions: bool = True, render_mode: str | None = None, **kwargs: Any) -> Any:
    """A MinAtar game as a gymnasium environment (the registered ids' entry point): observations the game's
    10x10 planes channel-first, ``uint8`` 0/1 (``Box(0, 1, (C, 10, 10))``); Discrete actions; ``terminated``
    when the game ends (``truncated`` comes from the registered step limit); ``reset(seed=)`` seeds the game,
    its sticky actions (probability 0.1, as the paper) and difficulty ramping included. ``kwargs``: minatar's
    ``Environment`` options (``sticky_action_prob``, ``difficulty_ramping``). ``render_mode="rgb_array"``:
    one colour per plane on black."""
    return _minatar_class()(game, minimal_actions, render_mode, **kwargs)


@functools.lru_cache(maxsize=1)
def _minatar_class() -> type:
    import logging

    import gymnasium as gym
    from gymnasium import spaces

    before = logging.root.manager.disable
    logging.disable(logging.WARNING)  # minatar warns on import that seaborn (its own display's palette) is missing
    try:
        import minatar
    except ImportError:
        raise DataError(f"the MinAtar environments need the minatar package, which is not installed: {MINATAR_PIP}") from None
    finally:
        logging.disable(before)

    class MinAtarEnv(gym.Env):  # type: ignore[type-arg]
        metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

        def __init__(self, game: str, minimal_actions: bool, render_mode: str | None, **kwargs: Any) -> None:
            self.game = minatar.Environment(game, **kwargs)
            self.render_mode = render_mode
            self.actions = list(self.game.minimal_action_set()) if minimal_actions else list(range(self.game.num_actions()))
            h, w, c = self.game.state_shape()
            self.observation_space = spaces.Box(0, 1, (c, h, w), np.uint8)
            self.action_space = spaces.Discrete(len(self.actions))
            self._seeded = False

        def _obs(self) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(self.game.state(), dtype=np.uint8).transpose(2, 0, 1))

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
            super().reset(seed=seed)
            if seed is not None or not self._seeded:  # the game's generator follows gymnasium's seeding
                self.game.seed(int(self.np_random.integers(2**31 - 1)))
                self._seeded = True
            self.game.reset()
            return self._obs(), {}

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
            reward, done = self.game.act(self.actions[int(action)])
            return self._obs(), float(reward), bool(done), False, {}

        def render(self) -> np.ndarray | None:
            if self.render_mode != "rgb_array":
                return None
            import matplotlib

            state = np.asarray(self.game.state(), dtype=bool)  # (H, W, C)
            n = state.shape[-1]
            palette = np.concatenate([[[0, 0, 0]], matplotlib.colormaps["cubehelix"](np.linspace(0.15, 0.9, n))[:, :3] * 255])
            index = np.where(state.any(-1), state.argmax(-1) + 1, 0)  # the first plane set, 0: empty
            return palette.astype(np.uint8)[index]

    return MinAtarEnv
