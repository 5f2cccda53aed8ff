"""Reinforcement-learning task: searched actor-critic networks trained with stable-baselines3's PPO.

Importing the package registers the task, its ``policy`` space and genotype, the policy
builder, the player (``mode=play``), the fine-tuner, the hub facts and the stable-baselines3 bridge.
"""

from tasks.rl import finetune, hub, integrations, model, play, space  # noqa: F401  (register; integrations: the "sb3" bridge)
from tasks.rl.task import RL

__all__ = ["RL"]
