"""Times one DARTS supernet step in one process and in two (DDP over gloo, CPU), side by side.

The step is what ``zoo.search.darts`` does per batch at first order (Liu et al., "DARTS", ICLR
2019), as it runs under ``torchrun`` (:mod:`zoo.runners.distributed`): forward + backward for alpha
on a valid batch on the bare supernet, the alpha gradients averaged over the processes, an Adam
step on alpha; then forward + backward through ``DistributedDataParallel`` for the weights on a
train batch (DDP averages their gradients), gradient clipping and an SGD (momentum) step. With one
process the same code runs with :class:`zoo.estimate.problem.Replicas` (nothing shared, no DDP).

Each process trains on its own batch of ``--batch`` samples, as each ``torchrun`` rank takes its
own share of the batches: two processes take half the steps per epoch, so the epoch speed-up is
``2 * t1 / t2`` for step times ``t1`` (one process) and ``t2`` (two).

One run measures all: two processes are spawned once and take turns, ``--reps`` times (the order
rotating), at blocks of ``--steps`` steps: rank 0 alone (rank 1 waits at a barrier), both with DDP,
and both at once without any communication (two independent searches: the most two processes can
do on this machine, so ``DDP / independent`` is the cost of the communication itself). Load from
other programs hits all alike. Each process uses ``--threads`` torch threads (1: two processes fill
two cores). Reported: medians and minima of the per-step wall time of the blocks, the median
process CPU time per step of rank 0 (less disturbed by other programs than wall time), and the ratios.

    python bench/ddp_step.py                      # digits supernet, batch 64 per process
    python bench/ddp_step.py --config cifar --reps 5 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from zoo.estimate.problem import Replicas
from zoo.runners.distributed import DistributedReplicas, World
from zoo.space.ops import DARTS_OPS
from zoo.space.supernet import SuperNet

CONFIGS: dict[str, dict[str, Any]] = {
    # tasks/classification/conf/task/classification.yaml (supernet) + trainer batch 64 + digits data
    "digits": dict(in_chans=1, size=8, init_channels=8, layers=5, batch=64, num_classes=10),
    # the DARTS CIFAR-10 search network at a smaller batch
    "cifar": dict(in_chans=3, size=32, init_channels=16, layers=8, batch=32, num_classes=10),
}


class Step:
    """One supernet with its optimizers and two fixed batches; :meth:`step` is one DARTS step."""

    def __init__(self, cfg: dict[str, Any], replicas: Replicas, batch: int, data_seed: int) -> None:
        torch.manual_seed(0)
        self.net = SuperNet(
            num_classes=cfg["num_classes"],
            init_channels=cfg["init_channels"],
            layers=cfg["layers"],
            in_chans=cfg["in_chans"],
            primitives=DARTS_OPS,
        )
        self.net.train()
        self.replicas = replicas
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.model = replicas.wrap(self.net, ignore=self.net.arch_parameters())
        g = torch.Generator().manual_seed(data_seed)  # each process its own batches, as each rank its own shard
        shape = (batch, cfg["in_chans"], cfg["size"], cfg["size"])
        self.train_batch = (torch.randn(shape, generator=g), torch.randint(0, cfg["num_classes"], (batch,), generator=g))
        self.valid_batch = (torch.randn(shape, generator=g), torch.randint(0, cfg["num_classes"], (batch,), generator=g))

    def step(self) -> None:
        net, arch = self.net, self.net.arch_parameters()
        self.a_opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(self.valid_batch[0]), self.valid_batch[1]).backward(inputs=arch)
        self.replicas.average_grads(arch)
        self.a_opt.step()
        self.w_opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(self.model(self.train_batch[0]), self.train_batch[1]).backward()
        self.replicas.sync_weight_grads(net.weight_parameters())
        for a in arch:
            a.grad = None
        nn.utils.clip_grad_norm_(list(net.weight_parameters()), 5.0)
        self.w_opt.step()


def _block(step: Step, steps: int) -> tuple[float, float]:
    """Wall and process CPU seconds per step over ``steps`` steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step.step()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def worker(rank: int, size: int, init: str, cfg: dict[str, Any], batch: int, reps: int, steps: int, threads: int, out: str) -> None:
    torch.set_num_threads(threads)
    replicas = DistributedReplicas.start(World(rank=rank, size=size, local_rank=rank), init_method=init)
    solo = Step(cfg, Replicas(), batch, data_seed=1 + rank)
    pair = Step(cfg, replicas, batch, data_seed=1 + rank)
    for _ in range(2):  # warm-up: optimizer state, lazy kernel and communication set-up
        solo.step()
        pair.step()
    kinds = ["1", "2", "2 independent"]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(reps):
        for what in kinds[r % 3 :] + kinds[: r % 3]:
            dist.barrier()
            if what == "1" and rank != 0:
                continue
            wall, cpu_s = _block(pair if what == "2" else solo, steps)
            times[what].append(wall)
            cpu[what].append(cpu_s)
    dist.barrier()
    if rank == 0:
        Path(out).write_text(json.dumps({"wall": times, "cpu": cpu}))
    replicas.close()


def run(config: str, batch: int | None, reps: int, steps: int, threads: int) -> dict[str, Any]:
    cfg = CONFIGS[config]
    batch = batch or cfg["batch"]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "times.json")
        mp.spawn(worker, args=(2, f"file://{d}/rendezvous", cfg, batch, reps, steps, threads, out), nprocs=2, join=True)
        measured = json.loads(Path(out).read_text())
    times, cpu = measured["wall"], measured["cpu"]
    t1, t2, t_free = (statistics.median(times[k]) for k in ("1", "2", "2 independent"))
    return {
        "config": config,
        **cfg,
        "batch": batch,
        "reps": reps,
        "steps": steps,
        "threads": threads,
        "weight_params": sum(p.numel() for p in Step(cfg, Replicas(), 2, 0).net.weight_parameters()),
        "times_s": times,
        "median_s": {"1": t1, "2": t2, "2 independent": t_free},
        "min_s": {k: min(v) for k, v in times.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "step_ratio": t2 / t1,
        "epoch_speedup": 2 * t1 / t2,
        "ddp_over_independent": t2 / t_free,
        "independent_speedup": 2 * t1 / t_free,
    }


def report(res: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"== {res['config']}: C={res['init_channels']} layers={res['layers']} batch={res['batch']} per process, "
            f"input {res['in_chans']}x{res['size']}x{res['size']}, {res['weight_params']} weights, gloo on CPU, "
            f"{res['threads']} thread(s) per process, {res['reps']} interleaved reps of {res['steps']} steps",
            f"{'processes':<17}{'median step':>14}{'min step':>12}{'samples/s':>12}{'CPU/step (rank 0)':>20}",
            *(
                f"{n + (' DDP' if n == '2' else ''):<17}{res['median_s'][n] * 1e3:>11.1f} ms{res['min_s'][n] * 1e3:>9.1f} ms"
                f"{int(n[0]) * res['batch'] / res['median_s'][n]:>12.0f}{res['median_cpu_s'][n] * 1e3:>17.1f} ms"
                for n in ("1", "2", "2 independent")
            ),
            f"step time 2 DDP / 1: {res['step_ratio']:.2f}x -> epoch speed-up with 2 processes (each takes half the steps): "
            f"{res['epoch_speedup']:.2f}x; CPU time per step 2 DDP / 1: {res['median_cpu_s']['2'] / res['median_cpu_s']['1']:.2f}x",
            f"this machine's ceiling, two independent processes: {res['independent_speedup']:.2f}x; "
            f"DDP / independent step time: {res['ddp_over_independent']:.2f}x",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="digits", choices=list(CONFIGS))
    ap.add_argument("--batch", type=int, help="samples per process and step (default: the config's)")
    ap.add_argument("--reps", type=int, default=6, help="alternating blocks per process count")
    ap.add_argument("--steps", type=int, default=5, help="steps per timed block")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    res = run(args.config, args.batch, args.reps, args.steps, args.threads)
    print(report(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
