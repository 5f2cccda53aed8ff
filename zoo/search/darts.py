"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019).

Bi-level optimisation: the weights w minimise the training loss, the architecture
parameters alpha minimise the validation loss of w*(alpha). ``order=1`` treats w as
constant (DARTS-V1); ``order=2`` uses the one-step unrolled approximation
w' = w - xi * grad_w L_train(w, alpha) and the finite-difference Hessian-vector
product of the paper's eq. (8) (DARTS-V2). The weights train with SGD and a cosine rate as in the paper,
or with the task's own optimiser and schedule where the problem brings one (``problem.weight_training``).

Under ``torchrun`` (``problem.distributed``, :mod:`zoo.runners.distributed`) each process takes
its share of the batches; the weights train under DDP and the architecture gradients are averaged
before each step, so every process holds the same alpha. Training stops after the epoch in
progress once :attr:`deadline` (``search.time_budget``) has passed; the genotype is derived from
what was trained.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call
from tqdm import tqdm

from zoo.estimate.problem import OneShotProblem
from zoo.search.base import STRATEGIES, OneShotStrategy, check


@STRATEGIES.register("darts")
class DARTS(OneShotStrategy):
    def __init__(
        self,
        seed: int = 0,
        epochs: int = 10,
        order: int = 1,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        unrolled_lr: float | None = None,
        warmup_epochs: int = 0,
        cost_weight: float = 0.3,
        progress: bool = True,
        **_: Any,
    ) -> None:
        super().__init__(seed)
        check(
            isinstance(cost_weight, (int, float)) and not isinstance(cost_weight, bool) and 0 <= cost_weight < 1e6,
            "cost_weight",
            cost_weight,
            "a number >= 0",
        )
        self.cost_weight = float(cost_weight)
        check(isinstance(epochs, int) and epochs > 0, "epochs", epochs, "a positive integer")
        check(order in (1, 2), "order", order, "1 (first order) or 2 (second order)")
        check(lr > 0, "lr", lr, "a positive number")
        check(0 <= lr_min <= lr, "lr_min", lr_min, f"0 <= lr_min <= lr ({lr})")
        check(arch_lr > 0, "arch_lr", arch_lr, "a positive number")
        check(weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0")
        check(0 <= warmup_epochs < epochs, "warmup_epochs", warmup_epochs, f"0 <= warmup_epochs < epochs ({epochs})")
        self.epochs = epochs
        self.order = order
        self.lr, self.lr_min = lr, lr_min
        self.momentum, self.weight_decay, self.grad_clip = momentum, weight_decay, grad_clip
        self.arch_lr, self.arch_weight_decay = arch_lr, arch_weight_decay
        self.unrolled_lr = unrolled_lr
        self.warmup_epochs = warmup_epochs
        self.progress = progress

    # ---- architecture step
    def _arch_grad_second_order(self, problem: OneShotProblem, train_batch: Any, valid_batch: Any, xi: float) -> None:
        """Sets alpha's ``.grad`` to the unrolled gradient; with several replicas the training gradient of
        the virtual step and the validation gradient of w' are their means, so that the mean of the
        replicas' results (taken by the caller) is the gradient for the union of their batches."""
        net = problem.supernet
        replicas = problem.distributed
        arch = net.arch_parameters()
        arch_ids = {id(a) for a in arch}
        names = [n for n, p in net.named_parameters() if id(p) not in arch_ids]
        params = dict(net.named_parameters())
        weights = [params[n] for n in names]

        def loss_with(wdict: dict[str, torch.Tensor], batch: Any) -> torch.Tensor:
            return problem.loss(_Bound(net, wdict), batch)

        # virtual step w' = w - xi * (grad L_train + wd * w)
        g_train = torch.autograd.grad(problem.loss(net, train_batch), weights, allow_unused=True)
        replicas.average_(g_train)
        w_prime = {
            n: (w - xi * ((g if g is not None else 0) + self.weight_decay * w)).detach().requires_grad_(True)
            for n, w, g in zip(names, weights, g_train)
        }
        l_val = loss_with(w_prime, valid_batch)
        grads = torch.autograd.grad(l_val, arch + list(w_prime.values()), allow_unused=True)
        d_alpha = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads[: len(arch)], arch)]
        d_w = [g if g is not None else torch.zeros_like(w) for g, w in zip(grads[len(arch) :], w_prime.values())]
        replicas.average_(d_w)
        norm = torch.sqrt(sum((g * g).sum() for g in d_w))
        eps = 0.01 / (float(norm) + 1e-12)
        hv = []
        for sign in (1.0, -1.0):
            w_shift = {n: (w + sign * eps * g).detach() for (n, w), g in zip(zip(names, weights), d_w)}
            hv.append(torch.autograd.grad(loss_with(w_shift, train_batch), arch, allow_unused=True))
        with torch.no_grad():
            for a, da, hp, hm in zip(arch, d_alpha, *hv):
                hp = hp if hp is not None else torch.zeros_like(a)
                hm = hm if hm is not None else torch.zeros_like(a)
                a.grad = da - xi * (hp - hm) / (2 * eps)

    def search(self, problem: OneShotProblem, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        torch.manual_seed(self.seed)
        net = problem.supernet.to(problem.device)
        replicas = problem.distributed
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_weight_decay)
        train_loader, valid_loader = replicas.shard(problem.train_loader), replicas.shard(problem.valid_loader)
        n_batches = len(train_loader)  # type: ignore[arg-type]
        total = self.epochs * n_batches
        schedule = None  # the task's own weight training (problem.weight_training) replaces SGD and its cosine
        if problem.weight_training is not None and self.order == 2:
            raise ValueError(
                "search.order=2 is invalid with this task: its supernet's weights train with the task's own optimiser, "
                "which the unrolled SGD step of second-order DARTS does not model; allowed: search.order=1"
            )
        if problem.weight_training is not None:
            w_opt, schedule = problem.weight_training(list(net.weight_parameters()), self.epochs, n_batches)
        else:
            w_opt = torch.optim.SGD(net.weight_parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        objects = {"supernet": net, "weights_optimizer": w_opt, "arch_optimizer": a_opt}
        if schedule is not None and schedule.state is not None:
            objects["weights_schedule"] = schedule.state
        kind = type(self).__name__
        meta = problem.checkpoint.restore(kind, objects) if problem.checkpoint is not None else None
        start = int(meta["epoch"]) if meta else 0  # resume: continue after the last saved epoch
        # after the restore: replicas start from rank 0's state; alpha stays outside DDP (stepped on net itself)
        model = replicas.wrap(net, ignore=net.arch_parameters())
        bar = tqdm(total=total, initial=start * n_batches, desc=f"darts (order {self.order})", disable=not self.progress, leave=False)
        step = start * n_batches
        for epoch in range(start, self.epochs):
            if schedule is None:
                lr = self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * epoch / self.epochs))
                for group in w_opt.param_groups:
                    group["lr"] = lr
            else:
                schedule.start_epoch(epoch)
            net.train()
            valid_iter = itertools.cycle(valid_loader)
            running, seen = 0.0, 0
            for train_batch in train_loader:
                train_batch = _to(train_batch, problem.device)
                valid_batch = _to(next(valid_iter), problem.device)
                if epoch >= self.warmup_epochs:
                    a_opt.zero_grad(set_to_none=True)
                    if self.order == 1:
                        problem.loss(net, valid_batch).backward(inputs=net.arch_parameters())
                    else:
                        self._arch_grad_second_order(problem, train_batch, valid_batch, self.unrolled_lr or w_opt.param_groups[0]["lr"])
                    cost = problem.cost(net) if problem.cost is not None and self.cost_weight else None
                    if cost is not None:  # the run's constraints: lean towards cheaper ops (ProxylessNAS-style term)
                        expected, reference = cost
                        (self.cost_weight * expected / reference).backward(inputs=net.arch_parameters())
                    replicas.average_grads(net.arch_parameters())
                    a_opt.step()
                w_opt.zero_grad(set_to_none=True)
                loss = problem.loss(model, train_batch)
                loss.backward()
                replicas.sync_weight_grads(net.weight_parameters())
                for a in net.arch_parameters():
                    a.grad = None
                torch.nn.utils.clip_grad_norm_(list(net.weight_parameters()), self.grad_clip)
                w_opt.step()
                if schedule is not None:
                    schedule.after_step()
                running += float(loss.detach())
                seen += 1
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{running / seen:.3f}")
            replicas.sync_buffers(net)
            score = problem.score(net, problem.valid_loader)
            genotype = net.genotype()
            train_loss = torch.tensor(running / max(seen, 1), dtype=torch.float64)
            replicas.average_([train_loss])  # over every replica's batches
            if log is not None:
                weights = {k: _as_lists(w) for k, w in net.arch_weights().items()}
                log({"epoch": epoch + 1, "train_loss": float(train_loss), "reward": score, "genotype": genotype.to_json(), **weights})
            if problem.checkpoint is not None:
                problem.checkpoint.save(kind, objects, {"epoch": epoch + 1})
            if epoch + 1 < self.epochs and self.stop_for_time(replicas, log, epoch=epoch + 1):
                break
        bar.close()
        return net.genotype()


def _as_lists(w: Any) -> Any:
    """A tensor, or (nested) lists of tensors or numbers, as nested JSON lists."""
    if isinstance(w, torch.Tensor):
        return w.detach().cpu().tolist()
    return [_as_lists(v) for v in w] if isinstance(w, (list, tuple)) else w


class _Bound(torch.nn.Module):
    """Calls ``net`` with substituted weights (``torch.func.functional_call``), keeping its methods' API."""

    def __init__(self, net: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        object.__setattr__(self, "_net", net)
        object.__setattr__(self, "_weights", weights)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self._net, self._weights, args, kwargs, strict=False)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a named tuple takes its fields as arguments
        return type(batch)(*(_to(b, device) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch
