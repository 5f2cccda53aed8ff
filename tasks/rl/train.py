"""PPO training in checkpointed chunks, with a learning curve of evaluation episodes (:func:`tasks.rl.metrics.evaluate`).

:func:`train_ppo` runs stable-baselines3's PPO for ``steps`` environment steps in ``epochs``
chunks. Each chunk starts from seeds derived from (seed, chunk) and fresh environment resets,
so a run resumed from the checkpoint after chunk k (policy, optimizer, step counters, the
learning curve) continues exactly as the uninterrupted run; the learning-rate and clip-range
schedules run over the whole training (:class:`tasks.rl.integrations.sb3.RunPPO`). Every
``eval_every`` steps a deterministic evaluation on fixed seeds goes into the learning curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from tasks.rl.metrics import evaluate

KIND = "rl_ppo"
EVAL_SEED = 1_000_000  # the final 100-episode evaluation: seeds no training or candidate evaluation uses
CURVE_SEED = 2_000_000  # evaluations during training


def seed_for(*key: int) -> int:
    """A 31-bit seed for ``key`` (run seed, chunk, ...): unrelated keys give unrelated seeds, so the
    per-environment seeds ``s, s + 1, ...`` of one chunk never replay another chunk's."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0] >> 1)


class CurveRecorder:
    """Appends a deterministic evaluation to ``history`` each time training passes a multiple of ``every`` steps.

    Called when a rollout starts (the policy then holds every update of the steps so far) and
    after each chunk, so each point is the policy trained on exactly the steps it is plotted at."""

    def __init__(self, env_id: str, every: int, episodes: int, history: list[dict[str, Any]], bar: Any, seed: int = CURVE_SEED) -> None:
        self.env_id, self.every, self.episodes, self.history, self.bar, self.seed = env_id, every, episodes, history, bar, seed

    def __call__(self, ppo: Any, last: bool = False) -> None:
        """``last``: the end of training, recorded even between multiples of ``every``."""
        n = int(ppo.num_timesteps)
        if self.bar is not None:
            self.bar.update(n - self.bar.n)
        done = self.history[-1]["steps"] if self.history else 0
        if self.every and n > done and (last or n // self.every > done // self.every):
            rets = evaluate(ppo.policy, self.env_id, self.episodes, self.seed)
            train = [float(e["r"]) for e in ppo.ep_info_buffer] if ppo.ep_info_buffer else []
            self.history.append({"steps": n, "eval_return": float(np.mean(rets)), "train_return": float(np.mean(train)) if train else None})
            if self.bar is not None:
                self.bar.set_postfix(eval_return=f"{np.mean(rets):.1f}")

    def callback(self) -> Any:
        """The SB3 callback that calls this recorder when a rollout starts."""
        from stable_baselines3.common.callbacks import BaseCallback

        recorder = self

        class OnRolloutStart(BaseCallback):
            def _on_step(self) -> bool:
                return True

            def _on_rollout_start(self) -> None:
                recorder(self.model)

        return OnRolloutStart()


def chunk_ends(steps: int, rollout: int, epochs: int) -> list[int]:
    """The step count at the end of each chunk: whole rollouts, as evenly spread as they go."""
    n = max(1, math.ceil(steps / rollout))
    epochs = min(epochs, n)
    return [rollout * round(n * (e + 1) / epochs) for e in range(epochs)]


def train_ppo(
    make_ppo: Callable[[], Any],
    env_id: str,
    steps: int,
    epochs: int,
    seed: int,
    checkpoint: Any = None,
    eval_every: int = 0,
    eval_episodes: int = 5,
    progress: bool = False,
    desc: str = "ppo",
    before_chunk: Callable[[Any, int], None] | None = None,
    schedule_steps: int | None = None,
    eval_seed: int = CURVE_SEED,
) -> tuple[Any, list[dict[str, Any]]]:
    """Trains ``make_ppo()`` (a :class:`RunPPO` on its vectorised env) and returns it with its learning
    curve; ``before_chunk(ppo, k)`` runs before chunk k (e.g. to freeze parts). ``schedule_steps``: the
    run length the schedules decay over (default ``steps``); a candidate's short training takes the
    full run's, so it is the first part of that run rather than a run annealed early. ``eval_seed``: the
    first reset seed of the curve's evaluation episodes."""
    ppo = make_ppo()
    rollout = int(ppo.n_envs * ppo.n_steps)
    ends = chunk_ends(steps, rollout, epochs)
    ppo.run_total_timesteps = max(ends[-1], int(schedule_steps or 0))
    objects = {"policy": ppo.policy, "optimizer": ppo.policy.optimizer}
    history: list[dict[str, Any]] = []
    start = 0
    meta = checkpoint.restore(KIND, objects) if checkpoint is not None else None
    if meta is not None:
        start = int(meta["epoch"]) + 1
        ppo.num_timesteps, ppo._n_updates = int(meta["num_timesteps"]), int(meta["n_updates"])
        history = list(meta["history"])
    bar = tqdm(total=ends[-1], initial=ppo.num_timesteps, desc=desc, unit="step", leave=False, disable=not progress)
    curve = CurveRecorder(env_id, eval_every, eval_episodes, history, bar if progress else None, eval_seed)
    try:
        for e in range(start, len(ends)):
            ppo.set_random_seed(seed_for(seed, e))  # python, numpy, torch, the action space and the envs' next reset
            ppo._last_obs = None  # learn() starts the chunk from fresh resets
            if ppo.ep_info_buffer is not None:
                ppo.ep_info_buffer.clear()  # training returns of this chunk only (a resumed run has no earlier ones)
            if before_chunk is not None:
                before_chunk(ppo, e)
            ppo.learn(total_timesteps=ends[e] - ppo.num_timesteps, callback=curve.callback(), reset_num_timesteps=False)
            curve(ppo, last=e == len(ends) - 1)
            if checkpoint is not None:
                checkpoint.save(
                    KIND,
                    objects,
                    {"epoch": e, "num_timesteps": int(ppo.num_timesteps), "n_updates": int(ppo._n_updates), "history": history},
                )
    finally:
        bar.close()
    return ppo, history
