"""Distributed one-shot search under ``torchrun``: several processes train one supernet.

What: ``torchrun --nproc-per-node N -m zoo search=darts ...`` (or ``pc_darts``, ``spos``)
starts N copies of the run, the *replicas*. Each trains the supernet on its own share of the
training batches (and takes the architecture step on its own share of the validation batches);
together they take the steps one process would take with N times the batch. Rank 0 alone
writes the run directory (log, epoch checkpoints, genotype, bundle, metrics) and retrains the
winner; the other ranks run Hydra in a scratch directory that is removed as their job starts, take
rank 0's run directory over the process group, and end after the search.

Why: a supernet step is the cost of a one-shot search, and it splits across processes (or
GPUs) by data parallelism, the way the supernet's weights are trained anyway; nothing in the
bi-level optimisation of DARTS (Liu et al., ICLR 2019) or in SPOS (Guo et al., ECCV 2020)
depends on which process computed a batch's gradient.

How the replicas stay equal, so every rank derives the same genotype:

* the weights train under :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU,
  nccl for CUDA tensors), which averages their gradients in the backward pass; DDP is told to
  ignore the architecture parameters (``_set_params_and_buffers_to_ignore_for_model``): their
  gradients are averaged by :meth:`DistributedReplicas.average_grads` before each architecture
  step, taken on the bare module, so every replica applies the same Adam step to the same
  values (without the averaging they drift apart within a few steps). A task whose one-shot
  loss calls more of the supernet than its forward (``Task.second_order = False``) bypasses
  DDP's hooks, so its weight gradients are averaged by hand after each backward instead
  (the same arithmetic, without overlapping communication and compute);
* second-order DARTS averages the training gradient of the virtual step and the validation
  gradient of the unrolled weights too, so the finite-difference Hessian term uses the same
  step size on every replica and the averaged architecture gradient is that of the global batch;
* every replica draws the same random numbers: one seed, loaders shuffled by the same seeded
  generators and iterated in full by every replica (:class:`Shard` keeps every ``N``-th batch,
  pulling the batches in groups of ``N`` so that a loader that acts between batches, such as
  a rollout collector, acts at the same step everywhere), SPOS's path per step from the same
  numpy generator, so all replicas train the same path each step (``find_unused_parameters``
  then lets DDP skip the ops off the path; a parameter unused on every replica keeps no
  gradient, so SGD leaves it alone as in one process);
* at every epoch end the batch-norm statistics are averaged (:meth:`~DistributedReplicas.sync_buffers`),
  so the epoch's score, its checkpoint and the supernet itself are the same on every replica;
  scores are computed by every replica on the whole validation split (their generators advance
  alike) and SPOS's evolution spreads each population's evaluations over the replicas (a score
  must not depend on the order of the validation batches: accuracy, mAP and mIoU do not);
* decisions taken from a clock (``search.time_budget``) are rank 0's (:meth:`~DistributedReplicas.decide`);
  the genotypes are compared across ranks at the end, and a difference is an error.

The result equals a one-process search with ``N`` times the batch except for batch
normalisation, whose batch statistics stay per replica (as in DDP without SyncBatchNorm), and for
the last ``len % N`` batches of each pass, which no replica trains on. An epoch takes ``1/N`` of
the steps; the learning rates are not scaled with ``N`` (``search.lr`` and ``search.arch_lr`` are
the user's to raise).

Resume: ``resume=true hydra.run.dir=DIR`` under ``torchrun`` continues from rank 0's epoch
checkpoint, which every rank reads from ``DIR``: the ranks must share a filesystem (one node,
or a shared mount across nodes).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zoo.estimate.problem import Replicas
from zoo.runners.checkpoint import EpochCheckpoint


@dataclass(frozen=True)
class World:
    """This process's place among ``torchrun``'s: ``RANK`` of ``WORLD_SIZE``, ``LOCAL_RANK`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> World:
        env = os.environ if env is None else env
        size = int(env.get("WORLD_SIZE", "1") or 1)
        if size <= 1:
            return cls()
        return cls(rank=int(env.get("RANK", "0")), size=size, local_rank=int(env.get("LOCAL_RANK", "0")))

    @property
    def distributed(self) -> bool:
        return self.size > 1


_scratch_dirs: set[str] = set()  # named by follower_argv: the only directories drop_scratch_dir removes


def follower_argv(argv: list[str], world: World | None = None) -> list[str]:
    """The CLI arguments for this rank: unchanged on rank 0 and outside ``torchrun``; on other ranks
    Hydra's run directory becomes a scratch directory in the system's temporary folder, without a
    ``.hydra/`` record, so they leave nothing in ``outputs/``. Hydra creates it when the job starts
    and :func:`drop_scratch_dir` removes it right then, before the ranks wait for each other, so a
    rank stopped by ``torchrun`` (another rank failed) leaves nothing behind either."""
    world = world or World.from_env()
    if world.distributed and any(a in ("-m", "--multirun", "hydra.mode=MULTIRUN") for a in argv):
        raise ValueError(f"torchrun ({world.size} processes) runs one search at a time; run a -m sweep without torchrun")
    if world.rank == 0:
        return argv
    scratch = os.path.join(tempfile.gettempdir(), f"zoo-rank{world.rank}-{os.getpid()}-{secrets.token_hex(4)}")
    _scratch_dirs.add(os.path.realpath(scratch))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    kept = [a for a in argv if not a.startswith(("hydra.run.dir=", "hydra.output_subdir="))]
    return [*kept, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]


def drop_scratch_dir(run_dir: str | Path) -> None:
    """Removes ``run_dir`` if it is this rank's scratch directory (:func:`follower_argv`); else nothing."""
    if os.path.realpath(run_dir) in _scratch_dirs:
        shutil.rmtree(run_dir, ignore_errors=True)


class Shard:
    """Replica ``rank``'s share of ``batches``: the ``rank``-th batch of every group of ``size``.

    Every replica iterates the whole of ``batches`` (its shuffling and augmentation generators
    advance as in one process) and takes the same number of batches, ``len(batches) // size``;
    the last ``len(batches) % size`` batches of a pass are drawn and left out.
    """

    def __init__(self, batches: Iterable[Any], rank: int, size: int) -> None:
        self.batches, self.rank, self.size = batches, rank, size
        total = len(batches)  # type: ignore[arg-type]
        if total < size:
            raise ValueError(f"a split of {total} batches cannot be shared by {size} processes; use fewer processes or smaller batches")
        self.n = total // size

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.batches)
        for _ in range(self.n):
            yield list(islice(it, self.size))[self.rank]
        for _ in it:  # the rest of the pass, drawn as one process would draw it
            pass


class FollowerCheckpoint(EpochCheckpoint):
    """The epoch checkpoint of ranks other than 0: restores rank 0's files, never writes."""

    def save(self, kind: str, objects: dict[str, Any], meta: dict[str, Any], rng: Any = None) -> None:
        pass

    def remove(self) -> None:
        pass


def _backend() -> str:
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def _mean_(tensors: Sequence[torch.Tensor], size: int) -> None:
    """All-reduces ``tensors`` to their mean over the group in place, one collective per device and dtype."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for ts in groups.values():
        flat = torch.cat([t.detach().reshape(-1) for t in ts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(size)
        offset = 0
        for t in ts:
            t.detach().copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


class DistributedReplicas(Replicas):
    """The replicas of a search started by ``torchrun``, over one default process group.

    ``use_ddp=False`` averages the weights' gradients by hand after each backward instead of
    wrapping the supernet in DDP (for one-shot losses that call more than the supernet's forward).
    """

    def __init__(self, world: World, use_ddp: bool = True) -> None:
        self.world = world
        self.rank, self.size = world.rank, world.size
        self.use_ddp = use_ddp

    @classmethod
    def start(cls, world: World, use_ddp: bool = True, init_method: str | None = None, timeout_s: float = 1800) -> DistributedReplicas:
        """Joins the process group (``torchrun``'s ``MASTER_ADDR``/``MASTER_PORT`` unless ``init_method``);
        with CUDA, each rank's current device becomes its ``LOCAL_RANK``-th GPU."""
        if torch.cuda.is_available() and world.local_rank < torch.cuda.device_count():
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(
            _backend(), init_method=init_method or "env://", rank=world.rank, world_size=world.size, timeout=timedelta(seconds=timeout_s)
        )
        return cls(world, use_ddp)

    def close(self, ok: bool = True) -> None:
        """Leaves the process group (after waiting for every rank when the search ended well)."""
        if dist.is_initialized():
            if ok:
                dist.barrier()
            dist.destroy_process_group()

    def __enter__(self) -> DistributedReplicas:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(ok=exc_type is None)

    # ---- the run
    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_same(self, value: Any, what: str) -> None:
        """Raises on every rank if some rank's ``value`` differs from rank 0's."""
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise RuntimeError(f"the {self.size} processes ended with different {what}s (rank {differ[0]} differs from rank 0)")

    def follower_checkpoint(self, directory: str | Path, resume: bool) -> FollowerCheckpoint:
        """The checkpoint of a rank other than 0: reads rank 0's in ``directory``, writes nothing."""
        return FollowerCheckpoint(directory, resume=resume)

    # ---- the strategy's steps (zoo.estimate.problem.Replicas)
    def shard(self, batches: Iterable[Any]) -> Shard:
        return Shard(batches, self.rank, self.size)

    def wrap(self, net: nn.Module, ignore: Sequence[nn.Parameter] = (), find_unused: bool = False) -> nn.Module:
        device = next(net.parameters()).device
        if device.type == "cuda" and device.index != torch.cuda.current_device():
            raise ValueError(
                f"rank {self.rank} trains on {device}, but its GPU is cuda:{torch.cuda.current_device()} (LOCAL_RANK); "
                "a task under torchrun must put its models on the current device"
            )
        ignored = {id(p) for p in ignore}
        for p in ignore:  # outside DDP: made equal here, kept equal by average_grads
            dist.broadcast(p.data, src=0)
        if not self.use_ddp:
            for t in [*(p for p in net.parameters() if id(p) not in ignored), *net.buffers()]:
                dist.broadcast(t.data, src=0)
            return net
        names = [n for n, p in net.named_parameters() if id(p) in ignored]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(net, names)
        # the supernets' bundled kernels have size-1 dims whose strides differ from their gradients' while
        # the memory layouts are the same (both contiguous), so DDP's warning of a slow strided copy is moot
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides", category=UserWarning)
        return DistributedDataParallel(
            net,
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=find_unused,
            forward_sync_buffers=False,  # batch-norm statistics are averaged at epoch ends (sync_buffers)
        )

    def sync_weight_grads(self, params: Iterable[nn.Parameter]) -> None:
        if not self.use_ddp:
            self.average_grads(params)

    def average_grads(self, params: Iterable[torch.Tensor]) -> None:
        _mean_([p.grad for p in params if p.grad is not None], self.size)

    def average_(self, tensors: Iterable[torch.Tensor | None]) -> None:
        _mean_([t for t in tensors if t is not None], self.size)

    def sync_buffers(self, net: nn.Module) -> None:
        _mean_([b for b in net.buffers() if b.is_floating_point()], self.size)

    def decide(self, flag: bool) -> bool:
        box = torch.tensor([int(flag)])
        dist.broadcast(box, src=0)
        return bool(box.item())

    def spread(self, fn: Callable[[Any], float], items: Sequence[Any]) -> list[float]:
        mine = {i: float(fn(items[i])) for i in range(self.rank, len(items), self.size)}
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, mine)
        out = {i: v for part in gathered for i, v in part.items()}
        return [out[i] for i in range(len(items))]
