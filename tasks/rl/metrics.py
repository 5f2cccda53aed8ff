"""What the RL task measures and minimises: episode returns (batched evaluation episodes), the steps a
learning curve takes to reach a return, and PPO's loss (Schulman et al. 2017) for the one-shot search."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tasks.rl.data import make_env


def evaluate(policy: Any, env_id: str, episodes: int, seed: int, deterministic: bool = True, max_steps: int = 100_000) -> list[float]:
    """Returns of ``episodes`` episodes (reset with seeds ``seed``, ``seed + 1``, ...), all stepped
    together with one batched ``policy.predict`` per step; an episode is cut after ``max_steps``
    steps (environments without a time limit)."""
    envs = [make_env(env_id) for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = [0.0] * episodes
    live = list(range(episodes))
    try:
        for _ in range(max_steps):
            if not live:
                break
            actions, _ = policy.predict(np.stack([np.asarray(obs[i]) for i in live]), deterministic=deterministic)
            still = []
            for i, a in zip(live, actions):
                obs[i], r, terminated, truncated, _ = envs[i].step(a)
                returns[i] += float(r)
                if not (terminated or truncated):
                    still.append(i)
            live = still
    finally:
        for env in envs:
            env.close()
    return returns


def steps_to(history: list[dict[str, Any]], threshold: float | None) -> int | None:
    """Environment steps at the first evaluation of the curve reaching ``threshold`` (None: never)."""
    if threshold is None:
        return None
    return next((int(h["steps"]) for h in history if h["eval_return"] >= threshold), None)


def curve_score(history: list[dict[str, Any]], kind: str = "auc") -> float:
    """A learning curve as one number: ``auc``, the area under it divided by its steps (each evaluation return held
    from the previous point to its own, so equally spaced points weigh the same and the curve's end counts no more
    than its start); ``final``, the last evaluation's return."""
    if not history:
        raise ValueError("an empty learning curve has no score")
    if kind == "final":
        return float(history[-1]["eval_return"])
    if kind != "auc":
        raise ValueError(f"curve score {kind!r}; allowed: auc, final")
    steps = [0] + [int(h["steps"]) for h in history]
    area = sum((b - a) * float(h["eval_return"]) for a, b, h in zip(steps, steps[1:], history))
    return area / steps[-1] if steps[-1] else float(history[-1]["eval_return"])


def ppo_loss(policy: Any, batch: Any, clip_range: float, ent_coef: float, vf_coef: float, discrete: bool) -> torch.Tensor:
    """PPO's clipped surrogate + value + entropy loss (Schulman et al. 2017) on one rollout minibatch, advantages normalised."""
    actions = batch.actions.long().flatten() if discrete else batch.actions
    values, log_prob, entropy = policy.evaluate_actions(batch.observations, actions)
    adv = batch.advantages
    if len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = torch.exp(log_prob - batch.old_log_prob)
    policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1 - clip_range, 1 + clip_range)).mean()
    value_loss = F.mse_loss(batch.returns, values.flatten())
    entropy_loss = -entropy.mean() if entropy is not None else log_prob.mean()
    return policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
