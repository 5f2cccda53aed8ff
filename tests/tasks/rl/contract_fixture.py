"""RL's contract fixture: CartPole-v1 (gymnasium ships it, nothing to write), two PPO chunks of one
256-step rollout each, 8-unit towers; unknown, unsupported and not-installed environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from fixtures import BadData, TaskFixture, contract_fixture
from gymnasium import spaces

from zoo.config_values import ConfigError

MULTIBINARY_ID = "zoo-test/MultiBinaryActions-v0"
NEEDS_EXTRA_ID = "zoo-test/NeedsAnExtra-v0"
MISSING_MODULE_ID = "zoo-test/MissingModule-v0"  # its entry point's module is missing, as phys2d/* and tabular/* miss jax


class MultiBinaryActions(gym.Env):
    """A registered environment whose action space (MultiBinary) task=rl does not support."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.MultiBinary(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.zeros(3, np.float32), 0.0, True, False, {}


class ActionsFromOne(MultiBinaryActions):
    """Discrete actions numbered from 1, which SB3's categorical policies would mis-index."""

    action_space = spaces.Discrete(3, start=1)


class ChannelLastFloatImages(MultiBinaryActions):
    """Float images with the channels last: not an SB3 image (uint8 0..255, which SB3 moves channels first), so
    nothing would move them channel-first for the convolutional encoder."""

    observation_space = spaces.Box(0.0, 1.0, (10, 10, 3), np.float32)
    action_space = spaces.Discrete(2)


CHANNEL_LAST_ID = "zoo-test/ChannelLastFloatImages-v0"


def needs_an_extra(**_: Any) -> gym.Env:
    """An environment whose package is missing, as gymnasium's Box2D ones report it without box2d."""
    raise gym.error.DependencyNotInstalled('Box2D is not installed, you can install it by run `pip install "gymnasium[box2d]"`')


if MULTIBINARY_ID not in gym.registry:
    gym.register(MULTIBINARY_ID, entry_point=MultiBinaryActions)
if "zoo-test/ActionsFromOne-v0" not in gym.registry:
    gym.register("zoo-test/ActionsFromOne-v0", entry_point=ActionsFromOne)
if CHANNEL_LAST_ID not in gym.registry:
    gym.register(CHANNEL_LAST_ID, entry_point=ChannelLastFloatImages)
if NEEDS_EXTRA_ID not in gym.registry:
    gym.register(NEEDS_EXTRA_ID, entry_point=needs_an_extra)
if MISSING_MODULE_ID not in gym.registry:
    gym.register(MISSING_MODULE_ID, entry_point="zoo_test_no_such_module:Env")

TINY = [
    "task=rl",
    "data.env=CartPole-v1",
    *(f"task.{part}.{key}={value}" for part in ("model", "estimate_model", "supernet") for key, value in (("width", 8), ("layers", 1))),
    "task.baseline.enabled=false",
    "task.gif=false",
    "trainer.steps=512",
    "trainer.epochs=2",
    "trainer.estimate_steps=256",
    "trainer.estimate_seeds=1",
    "trainer.eval_every=256",
    "trainer.curve_episodes=2",
    "trainer.eval_episodes=3",
    "trainer.n_epochs=2",
]


@contract_fixture("rl")
def rl(root: Path) -> TaskFixture:
    return TaskFixture(
        overrides=list(TINY),
        bad_data=[
            BadData("unknown env", "data.env=NoSuchEnv-v0 is not a registered gymnasium environment", ("data.env=NoSuchEnv-v0",)),
            BadData("tuple observations", "data.env=Blackjack-v1 has a Tuple observation space", ("data.env=Blackjack-v1",)),
            BadData("multibinary actions", f"data.env={MULTIBINARY_ID} has a MultiBinary action space", (f"data.env={MULTIBINARY_ID}",)),
            BadData(
                "extra not installed",
                f"data.env={NEEDS_EXTRA_ID} needs a package that is not installed: Box2D is not installed",
                (f"data.env={NEEDS_EXTRA_ID}",),
            ),
            BadData(
                "entry point module missing",
                f"data.env={MISSING_MODULE_ID} needs a module that cannot be imported: No module named 'zoo_test_no_such_module'",
                (f"data.env={MISSING_MODULE_ID}",),
            ),
            BadData(
                "module of module:id missing",
                "data.env=zoo_test_no_such_module:Foo-v0 needs a module that cannot be imported",
                ("data.env=zoo_test_no_such_module:Foo-v0",),
            ),
            BadData(
                "discrete from 1",
                "data.env=zoo-test/ActionsFromOne-v0 has a Discrete(start=1) action space",
                ("data.env=zoo-test/ActionsFromOne-v0",),
            ),
            BadData(
                "channel-last float images",
                f"data.env={CHANNEL_LAST_ID} has image observations (10, 10, 3) of float32 with the channels last",
                (f"data.env={CHANNEL_LAST_ID}",),
            ),
            BadData(
                "bad schedule",
                "trainer.lr_schedule='cosine' is invalid; allowed: null or one of constant, linear",
                ("trainer.lr_schedule=cosine",),
                error=ConfigError,
            ),
        ],
    )
