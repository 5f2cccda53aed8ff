"""PPO's speed on a MinAtar game: the searched image encoder at several widths against the MinAtar network of the
same parameter count (the run's baseline), side by side in one process with one torch thread.

    .venv/bin/python bench/rl_pixels_speed.py --widths 8 16 32 --steps 4096 [--env MinAtar/Breakout-v1]

For each width: one architecture sampled from the ``policy`` space (seed 0), PPO with the task's settings for the
game (``tasks.rl.data.ppo_settings``) for ``--steps`` environment steps, then the same-size MinAtar network
(:meth:`tasks.rl.task.RL.image_baseline_arch`) for as many steps; prints environment steps per second of each and
their ratio. The wall clock includes rollouts (the policy acting one step at a time in the vectorised games) and
PPO's updates, as a run spends it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--steps", type=int, default=4096)
    ap.add_argument("--env", default="MinAtar/Breakout-v1")
    args = ap.parse_args()
    import numpy as np
    import torch

    from zoo.__main__ import compose_config
    from zoo.pipeline import build

    torch.set_num_threads(1)
    print(f"{'width':>5} {'params':>8} {'searched steps/s':>17} {'baseline':>12} {'baseline steps/s':>17} {'ratio':>6}")
    for width in args.widths:
        cfg = compose_config(["task=rl", f"data.env={args.env}", f"task.model.width={width}", "task.gif=false", "progress=false"])
        run = build(cfg, None, setup=True, runner=False)  # the task set up as a run sets it up
        task, space = run.task, run.space
        ppo = task._zoo_ppo(space.sample(np.random.default_rng(0)), True, 0)
        params = sum(p.numel() for p in ppo.policy.parameters())
        t0 = time.perf_counter()
        ppo.learn(args.steps)
        searched = args.steps / (time.perf_counter() - t0)
        arch, _ = task.baseline_arch(params)
        policy, kwargs = task.baseline_policy(arch)
        base = task.new_ppo(policy, 0, kwargs)
        t0 = time.perf_counter()
        base.learn(args.steps)
        baseline = args.steps / (time.perf_counter() - t0)
        print(f"{width:>5} {params:>8,} {searched:>17.0f} {str(arch):>12} {baseline:>17.0f} {baseline / searched:>6.1f}")


if __name__ == "__main__":
    main()
