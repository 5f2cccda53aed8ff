"""Fine-tuning a searched policy (``python -m zoo task=rl mode=finetune checkpoint=... data.env=ID``).

The parent policy continues training with PPO on ``data.env`` (whose observation and action
spaces must match the parent's), for ``finetune.epochs`` chunks of ``trainer.steps / trainer.epochs``
environment steps; during the first ``finetune.freeze_epochs`` chunks only the action and value
heads (and the action log-std) learn, the towers frozen (Kumar et al., ICLR 2022). The return
over ``trainer.eval_episodes`` evaluation episodes is reported before and after. PPO's own
settings (``trainer.*``, rl-zoo3's for the new environment) apply; ``finetune.lr`` and
``finetune.min_steps`` (the image tasks' optimiser settings) are not used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from zoo.config_values import ConfigError
from zoo.finetune import FinetuneJob, bundle_config, finetune_task, finetuner


@finetuner("rl")
def finetune_rl(job: FinetuneJob) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    from tasks.rl.integrations.sb3 import ZooPolicy, load_policy_weights, policy_kwargs, policy_net
    from tasks.rl.metrics import evaluate
    from tasks.rl.play import recorded_spaces
    from tasks.rl.train import EVAL_SEED, train_ppo
    from zoo.hub.bundle import load_bundle

    cfg, f = job.cfg, job.cfg.finetune
    task = finetune_task(job)
    parent, _ = load_bundle(job.bundle_dir)
    args = dict(job.parent["model"])
    i = task.info
    if not i.matches(args, job.parent.get("data") or {}):
        raise ConfigError(f"data.env={i.env_id} has {i.spaces()}; checkpoint={job.checkpoint} takes {recorded_spaces(job.parent)}")
    seed = int(cfg.seed)
    kwargs = policy_kwargs(parent.genotype, int(args["width"]), int(args["layers"]))

    def make() -> Any:
        ppo = task.new_ppo(ZooPolicy, seed, kwargs)
        load_policy_weights(ppo.policy, parent)
        return ppo

    episodes = int(cfg.trainer.eval_episodes)
    before = evaluate(make().policy, i.env_id, episodes, EVAL_SEED)
    epochs, frozen = int(f.epochs), int(f.freeze_epochs)
    steps = max(1, task._steps() * epochs // int(cfg.trainer.epochs))

    def freeze(ppo: Any, chunk: int) -> None:
        for p in ppo.policy.mlp_extractor.parameters():
            p.requires_grad_(chunk >= frozen)

    ppo, curve = train_ppo(make, i.env_id, steps, epochs, seed, before_chunk=freeze, progress=bool(cfg.progress), desc="finetune")
    freeze(ppo, frozen)
    after = evaluate(ppo.policy, i.env_id, episodes, EVAL_SEED)
    model = policy_net(ppo.policy, i.obs_dim, i.n_actions, i.discrete)
    metrics: dict[str, Any] = {
        "task": "rl",
        "env": i.env_id,
        "test_mean_return": float(np.mean(after)),
        "test_std_return": float(np.std(after)),
        "test_mean_return_before": float(np.mean(before)),
        "score": float(np.mean(after)),
        "params": sum(p.numel() for p in model.parameters()),
        "steps": int(ppo.num_timesteps),
        "epochs": epochs,
        "freeze_epochs": frozen,
    }
    keys = ("test_mean_return", "test_mean_return_before", "score", "params")
    config = bundle_config(job, args, None, task.describe_data(), {k: metrics[k] for k in keys})
    return model, config, metrics
