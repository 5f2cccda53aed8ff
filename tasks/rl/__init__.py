"""Reinforcement-learning task: searched actor-critic networks trained with stable-baselines3's PPO.

The modules in ``PLUGIN_MODULES`` register the task, its ``policy`` space and genotype, the policy
builder, the player (``mode=play``), the fine-tuner, the hub facts and the stable-baselines3 bridge
(``integrations``); :func:`zoo.plugins.load_plugins` imports them. The package imports nothing
itself, so the hub can import ``hub`` alone.
"""

PLUGIN_MODULES = ("finetune", "hub", "integrations", "model", "play", "space", "task")
