"""``runner=ray``: each candidate is a plain Ray task (``ray.remote`` + ``ray.wait``).

Ray Tune is not used: its restore re-runs interrupted trials and cannot skip candidates that
this project's log already holds, while plain tasks leave logging and resume to the loop in
:mod:`zoo.runners.local`. The run joins a cluster (``runner.address=auto`` or an address) or
starts a local Ray with the machine's CPUs. Before anything is submitted, the per-candidate
``num_cpus`` / ``num_gpus`` are checked against the largest node (a request no node can meet
would otherwise wait forever). Ray reuses worker processes: each task sets its torch threads
from the CPUs Ray assigned it and rebuilds the task from the config once per process
(``zoo.pipeline.evaluate_in_worker``); the config travels once, as an object reference.
A task whose worker is killed is retried by Ray (``max_retries``); after that, or when the
evaluation raises, the candidate is reported as failed.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from typing import Any

from zoo.config_values import ConfigError
from zoo.runners.base import RAY_SPECS, RUNNERS, Failure, Outcome, Runner, WorkerEvaluate


def check_ray_installed() -> None:
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(
            "runner=ray is invalid here: Ray is not installed; allowed: runner=local, runner=process, or pip install 'zoo[ray]'"
        )


def _evaluate_candidate(evaluate: WorkerEvaluate, cfg: dict[str, Any], run_dir: str, genotype_json: Any) -> tuple[Any, float]:
    import ray
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    return evaluate(cfg, run_dir, genotype_json)


@RUNNERS.register("ray")
class RayRunner(Runner):
    specs = RAY_SPECS

    def __init__(
        self,
        evaluate: WorkerEvaluate,
        cfg: dict[str, Any],
        run_dir: str,
        workers: int = 2,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(workers)
        check_ray_installed()
        import ray

        self.started_ray = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
                else:
                    ray.init(include_dashboard=False, logging_level=logging.WARNING)
                    self.started_ray = True
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise ConfigError(
                    f"runner.address={address} is invalid: no Ray cluster answers there ({str(e).splitlines()[0]}); "
                    "allowed: the address of a running cluster (ray start --head), or null to start a local Ray"
                ) from None
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if not any(n.get("CPU", 0.0) >= num_cpus and n.get("GPU", 0.0) >= num_gpus for n in nodes):
            key, want, resource = ("num_gpus", num_gpus, "GPU") if num_gpus else ("num_cpus", num_cpus, "CPU")
            have = max((n.get(resource, 0.0) for n in nodes), default=0.0)
            raise ConfigError(
                f"runner.{key}={want:g} is invalid: no node of this Ray cluster has {num_cpus:g} CPUs and {num_gpus:g} GPUs for one "
                f"candidate (ray.nodes(): at most {have:g} {resource}s on a node), so the candidates would wait forever; "
                "allowed: runner.num_cpus and runner.num_gpus that one node has"
            )
        self._remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(_evaluate_candidate)
        self._cfg = ray.put(cfg)
        self._evaluate_fn = evaluate
        self.run_dir, self.max_retries = str(run_dir), max_retries

    def evaluate(self, batch: list[tuple[int, Any]]) -> Iterator[Outcome]:
        import ray
        from ray.exceptions import NodeDiedError, RayError, WorkerCrashedError

        refs = {self._remote.remote(self._evaluate_fn, self._cfg, self.run_dir, g.to_json()): i for i, g in batch}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    result, seconds = ray.get(ref)
                except RayError as e:  # the worker died more than max_retries times, or the node was lost
                    retried = f" after {self.max_retries} retries" if isinstance(e, (WorkerCrashedError, NodeDiedError)) else ""
                    yield i, Failure(f"{type(e).__name__}{retried}: {str(e).strip().splitlines()[0]}", self.max_retries + 1), 0.0
                    continue
                yield i, result, seconds

    def close(self) -> None:
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False
