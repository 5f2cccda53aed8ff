"""SPOS: single-path one-shot search with uniform sampling (Guo, Zhang, Mu, Heng, Liu, Wei &
Sun, "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020).

Two decoupled stages:

1. **Supernet training.** Every batch trains one architecture drawn uniformly from the
   search space (its ops only, weights shared with every other architecture that uses them),
   so all paths are trained alike and none is favoured by a relaxation.
2. **Evolutionary search** on the trained supernet. A population of genotypes is scored on
   the validation split with the inherited weights, after recalibrating the batch-norm
   statistics of the path on a few training batches (the shared running statistics belong to
   no single path); the top ``parents`` produce the next population by crossover and
   mutation (each decision mutated with probability ``mutation_prob``). The best genotype
   seen is returned; the pipeline retrains it from scratch.

The supernet is the task's ``single_path`` supernet
(:class:`zoo.space.single_path.SinglePathSuperNet`); genotypes come from the task's search space.

Under ``torchrun`` (``problem.distributed``, :mod:`zoo.runners.distributed`) each process trains on
its share of the batches under DDP (``find_unused_parameters``: the ops off the path get no
gradient); all processes draw the same path each step from the same seeded generator, and each
generation's candidates are scored by the processes in turn.

Time budget (:attr:`deadline`, ``search.time_budget``): once it has passed, supernet training
stops after the epoch in progress and the evolution still runs, but stops after the generation in
progress (it always scores a first generation, so a genotype comes from the supernet trained so far).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from zoo.estimate.problem import OneShotProblem
from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy, check
from zoo.search.darts import _to
from zoo.space.genotype import genotype_key


@STRATEGIES.register("spos")
class SPOS(OneShotStrategy):
    supernet_kind = "single_path"

    def __init__(
        self,
        seed: int = 0,
        epochs: int = 10,
        lr: float = 0.05,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        population_size: int = 20,
        generations: int = 8,
        parents: int = 8,
        mutation_prob: float = 0.1,
        bn_batches: int = 4,
        progress: bool = True,
    ) -> None:
        super().__init__(seed)
        positive_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0  # noqa: E731
        check(positive_int(epochs), "epochs", epochs, "a positive integer")
        check(lr > 0, "lr", lr, "a positive number")
        check(0 <= lr_min <= lr, "lr_min", lr_min, f"0 <= lr_min <= lr ({lr})")
        check(0 <= momentum < 1, "momentum", momentum, "0 <= momentum < 1")
        check(weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0")
        check(grad_clip > 0, "grad_clip", grad_clip, "a positive number")
        check(positive_int(population_size) and population_size >= 2, "population_size", population_size, "an integer >= 2")
        check(positive_int(generations), "generations", generations, "a positive integer")
        check(
            positive_int(parents) and parents <= population_size,
            "parents",
            parents,
            f"an integer in 1..population_size ({population_size})",
        )
        check(0 < mutation_prob <= 1, "mutation_prob", mutation_prob, "a probability in (0, 1]")
        check(positive_int(bn_batches), "bn_batches", bn_batches, "a positive integer")
        self.epochs, self.lr, self.lr_min = epochs, lr, lr_min
        self.momentum, self.weight_decay, self.grad_clip = momentum, weight_decay, grad_clip
        self.population_size, self.generations, self.parents = population_size, generations, parents
        self.mutation_prob, self.bn_batches = mutation_prob, bn_batches
        self.progress = progress

    def search(self, problem: OneShotProblem, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        if problem.space is None:
            raise ConfigError("search=spos samples genotypes from the task's search space, and this task's one-shot problem has none")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        net = problem.build_supernet("single_path").to(problem.device)
        self._train_supernet(net, problem, rng, log)
        return self._evolve(net, problem, rng, log)

    # ---- stage 1
    def _train_supernet(
        self, net: nn.Module, problem: OneShotProblem, rng: np.random.Generator, log: Callable[[dict[str, Any]], None] | None
    ) -> None:
        space = problem.space
        replicas = problem.distributed
        train_loader = replicas.shard(problem.train_loader)
        n_batches = len(train_loader)  # type: ignore[arg-type]
        schedule = None  # the task's own weight training (problem.weight_training) replaces SGD and its cosine
        if problem.weight_training is not None:
            opt, schedule = problem.weight_training(list(net.parameters()), self.epochs, n_batches)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        objects = {"supernet": net, "optimizer": opt}
        if schedule is not None and schedule.state is not None:
            objects["schedule"] = schedule.state
        meta = problem.checkpoint.restore("SPOS", objects, rng) if problem.checkpoint is not None else None
        start = int(meta["epoch"]) if meta else 0  # resume: continue after the last saved epoch (evolution reruns, it is cheap)
        model = replicas.wrap(net, find_unused=True)  # after the restore: replicas start from rank 0's state
        bar = tqdm(total=self.epochs * n_batches, initial=start * n_batches, desc="spos supernet", disable=not self.progress, leave=False)
        for epoch in range(start, self.epochs):
            if schedule is None:
                for group in opt.param_groups:
                    group["lr"] = self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * epoch / self.epochs))
            else:
                schedule.start_epoch(epoch)
            net.train()
            running, seen = 0.0, 0
            for batch in train_loader:
                net.set_path(space.sample(rng))  # type: ignore[operator]
                opt.zero_grad(set_to_none=True)
                loss = problem.loss(model, _to(batch, problem.device))
                loss.backward()
                replicas.sync_weight_grads(net.parameters())
                nn.utils.clip_grad_norm_(list(net.parameters()), self.grad_clip)
                opt.step()
                if schedule is not None:
                    schedule.after_step()
                running += float(loss.detach())
                seen += 1
                bar.update(1)
                bar.set_postfix(loss=f"{running / seen:.3f}")
            replicas.sync_buffers(net)
            train_loss = torch.tensor(running / max(seen, 1), dtype=torch.float64)
            replicas.average_([train_loss])  # over every replica's batches
            if log is not None:
                probe = space.sample(rng)
                log(
                    {
                        "phase": "supernet",
                        "epoch": epoch + 1,
                        "train_loss": float(train_loss),
                        "reward": self._evaluate(net, problem, probe, self._calibration_batches(problem)),
                        "genotype": probe.to_json(),
                    }
                )
            if problem.checkpoint is not None:
                problem.checkpoint.save("SPOS", objects, {"epoch": epoch + 1}, rng)
            if epoch + 1 < self.epochs and self.stop_for_time(replicas, log, epoch=epoch + 1):
                break
        bar.close()

    # ---- stage 2
    def _calibration_batches(self, problem: OneShotProblem) -> list[Any]:
        return [_to(b, problem.device) for b in itertools.islice(iter(problem.train_loader), self.bn_batches)]

    @staticmethod
    def _evaluate(net: nn.Module, problem: OneShotProblem, genotype: Any, calibration: list[Any]) -> float:
        """Validation score of ``genotype`` with inherited weights and recalibrated BN statistics."""
        net.set_path(genotype)  # type: ignore[operator]
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        net.train()
        with torch.no_grad():
            for batch in calibration:
                problem.loss(net, batch)
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        return float(problem.score(net, problem.valid_loader))

    def _evolve(
        self, net: nn.Module, problem: OneShotProblem, rng: np.random.Generator, log: Callable[[dict[str, Any]], None] | None
    ) -> Any:
        space = problem.space
        calibration = self._calibration_batches(problem)
        scores: dict[Any, tuple[Any, float]] = {}
        n_decisions = len(space.cardinalities())  # type: ignore[union-attr]

        def fresh(make: Callable[[], Any], n: int, taken: set[Any]) -> list[Any]:
            out: list[Any] = []
            for _ in range(50 * n):
                if len(out) == n:
                    break
                g = make()
                key = genotype_key(g)
                if key not in scores and key not in taken:
                    taken.add(key)
                    if problem.feasible is None or problem.feasible(g):  # the run's constraints: no width fits it otherwise
                        out.append(g)
            return out

        def mutate() -> Any:
            parent = parents[int(rng.integers(len(parents)))]
            return space.mutate(parent, rng, n=max(1, int(rng.binomial(n_decisions, self.mutation_prob))))  # type: ignore[union-attr]

        def crossover() -> Any:
            a, b = rng.choice(len(parents), size=2, replace=len(parents) < 2)
            return space.crossover(parents[int(a)], parents[int(b)], rng)  # type: ignore[union-attr]

        population = fresh(lambda: space.sample(rng), self.population_size, set())  # type: ignore[union-attr]
        bar = tqdm(total=self.generations * self.population_size, desc="spos evolution", disable=not self.progress, leave=False)

        def evaluate(g: Any) -> float:
            bar.update(1)
            return self._evaluate(net, problem, g, calibration)

        for generation in range(self.generations):
            rewards = problem.distributed.spread(evaluate, population)
            for g, r in zip(population, rewards):
                scores[genotype_key(g)] = (g, r)
            ranked = sorted(scores.values(), key=lambda t: -t[1])
            parents = [g for g, _ in ranked[: self.parents]]
            bar.set_postfix(best=f"{ranked[0][1]:.3f}")
            if log is not None:
                log(
                    {
                        "phase": "evolution",
                        "generation": generation + 1,
                        "reward": ranked[0][1],
                        "population_mean": float(np.mean(rewards)) if rewards else None,
                        "evaluated": len(scores),
                        "genotype": ranked[0][0].to_json(),
                    }
                )
            if generation == self.generations - 1 or self.stop_for_time(problem.distributed, log, generation=generation + 1):
                break
            taken: set[Any] = set()
            n_mutations = self.population_size // 2
            children = fresh(mutate, n_mutations, taken)
            children += fresh(crossover, self.population_size - len(children), taken)
            children += fresh(lambda: space.sample(rng), self.population_size - len(children), taken)  # type: ignore[union-attr]
            population = children
        bar.close()
        return max(scores.values(), key=lambda t: t[1])[0]
