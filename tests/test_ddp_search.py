"""Distributed one-shot search (zoo.runners.distributed): two gloo processes on CPU train one
supernet on digits and end with the same genotype, bit-identical architecture parameters and
bit-identical supernet weights; under torchrun only rank 0 writes files.

The replicas run in module-scoped fixtures (a pair of spawned processes each, the variants one
after another); the tests then compare what each rank saved. DARTS with its time budget and
resume is the quick part; second-order DARTS, DARTS without DDP, PC-DARTS and SPOS are the slower one
(both fixtures request ``multiprocess``: every test here that uses them runs in that tier and its xdist group).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from helpers.cli import ZooCli
from helpers.tiers import Processes

from zoo.runners.distributed import Shard, World, drop_scratch_dir, follower_argv

ROOT = Path(__file__).resolve().parent.parent
# digits with a fifth held for search (test_fraction=0.8), batches of 16: 5 training batches per rank
DATA = [
    "task.supernet.init_channels=4",
    "task.supernet.layers=3",
    "space.steps=2",
    "task.supernet.multiplier=2",
    "trainer.batch_size=32",
    "data.test_fraction=0.8",
]
DARTS = {"epochs": 2, "warmup_epochs": 0, "arch_lr": 0.003, "progress": False}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "darts": ("darts", DARTS),  # the quick part (with the time budget and resume runs below)
    "darts_order2": ("darts", {**DARTS, "epochs": 1, "order": 2}),
    "darts_no_ddp": ("darts", {**DARTS, "epochs": 1}),  # weights averaged by hand (losses that bypass forward)
    "pc_darts": ("pc_darts", {**DARTS, "epochs": 1, "partial_channels": 2}),
    "spos": ("spos", {"epochs": 2, "population_size": 4, "generations": 2, "parents": 2, "bn_batches": 2, "progress": False}),
}


def _problem(replicas: Any) -> tuple[Any, Any, list[Any]]:
    from helpers.tasks import digits_task

    task, _ = digits_task(DATA)
    torch.manual_seed(0)  # as the pipeline seeds before building the supernet
    problem = task.one_shot_problem()
    problem.distributed = replicas
    built = [problem.supernet]
    make = problem.make_supernet

    def keep(kind: str, **kwargs: Any) -> Any:  # pc_darts and spos build their own supernet: keep it to compare
        built.append(make(kind, **kwargs))  # type: ignore[misc]
        return built[-1]

    problem.make_supernet = keep
    return task, problem, built


def _outcome(genotype: Any, net: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    arch = net.arch_parameters() if hasattr(net, "arch_parameters") else []
    return {
        "genotype": genotype.to_json(),
        "alphas": [a.detach().clone() for a in arch],
        "params": {k: v.detach().clone() for k, v in net.named_parameters()},
        "buffers": {k: v.detach().clone() for k, v in net.named_buffers()},
        "records": records,
    }


def _replica(rank: int, size: int, init: str, out: str, quick: bool) -> None:
    """One rank: DARTS, its time-budget and resume runs (``quick``), or the other variants; saves what it ended with."""
    from zoo.runners.checkpoint import EpochCheckpoint
    from zoo.runners.distributed import DistributedReplicas
    from zoo.runners.local import JsonlLog
    from zoo.search.base import STRATEGIES

    torch.set_num_threads(1)
    world = World(rank=rank, size=size, local_rank=rank)
    replicas = DistributedReplicas.start(world, init_method=init)
    results: dict[str, Any] = {}
    task, problem, built = _problem(replicas)
    results["shard"] = [float(x.sum()) for x, _ in replicas.shard(task.loader("search_train", True))]
    results["initial_alphas"] = [a.detach().clone() for a in problem.supernet.arch_parameters()]
    for variant, (name, hp) in VARIANTS.items():
        if (variant == "darts") != quick:
            continue
        replicas.use_ddp = variant != "darts_no_ddp"
        _, problem, built = _problem(replicas)
        records: list[dict[str, Any]] = []
        genotype = STRATEGIES.get(name)(**hp).search(problem, log=records.append)
        results[variant] = _outcome(genotype, built[-1], records)
    replicas.use_ddp = True
    if not quick:
        replicas.close()
        torch.save(results, Path(out) / f"rank{rank}.pt")
        return

    # time budget: rank 0's clock decides (rank 1's deadline is an hour away), both stop after epoch 1
    _, problem, built = _problem(replicas)
    strategy = STRATEGIES.get("darts")(**{**DARTS, "epochs": 3})
    strategy.deadline = 0.0 if rank == 0 else time.time() + 3600
    records = []
    results["deadline"] = _outcome(strategy.search(problem, log=records.append), built[-1], records)

    # resume: stopped by the budget after epoch 1 (rank 0's checkpoint), continued by both ranks from it
    run = Path(out) / "run"

    def searched(resume: bool, deadline: float | None) -> tuple[Any, Any]:
        _, problem, built = _problem(replicas)
        log = JsonlLog(run / "search_log.jsonl") if rank == 0 else None
        ckpt = (
            EpochCheckpoint(run, resume=resume, log_path=log.path) if log is not None else replicas.follower_checkpoint(run, resume=resume)
        )
        problem.checkpoint = ckpt.track(problem.train_loader, problem.valid_loader)
        strategy = STRATEGIES.get("darts")(**DARTS)
        strategy.deadline = deadline
        return strategy.search(problem, log=log.append if log is not None else (lambda r: None)), built[-1]

    searched(resume=False, deadline=0.0)
    genotype, net = searched(resume=True, deadline=None)
    log_lines = (run / "search_log.jsonl").read_text().splitlines() if rank == 0 else []
    results["resumed"] = {**_outcome(genotype, net, []), "log_lines": log_lines}
    replicas.close()
    torch.save(results, Path(out) / f"rank{rank}.pt")


def _spawn(out: Path, quick: bool) -> list[dict[str, Any]]:
    mp.spawn(_replica, args=(2, f"file://{out / 'rendezvous'}", str(out), quick), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory, multiprocess: Processes) -> list[dict[str, Any]]:
    return _spawn(tmp_path_factory.mktemp("ddp"), quick=True)


@pytest.fixture(scope="module")
def more_ranks(tmp_path_factory: pytest.TempPathFactory, multiprocess: Processes) -> list[dict[str, Any]]:
    return _spawn(tmp_path_factory.mktemp("ddp_more"), quick=False)


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def test_ranks_train_on_disjoint_shards_of_equal_length(ranks: list[dict[str, Any]]) -> None:
    zero, one = ranks[0]["shard"], ranks[1]["shard"]
    assert len(zero) == len(one) >= 2 and not set(zero) & set(one)


def test_darts_ranks_end_with_one_genotype_and_identical_supernets(ranks: list[dict[str, Any]]) -> None:
    check_identical(ranks, "darts")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "darts"])
def test_other_variants_end_with_one_genotype_and_identical_supernets(more_ranks: list[dict[str, Any]], variant: str) -> None:
    check_identical(more_ranks, variant)


def check_identical(ranks: list[dict[str, Any]], variant: str) -> None:
    zero, one = ranks[0][variant], ranks[1][variant]
    assert zero["genotype"] == one["genotype"]
    assert len(zero["alphas"]) == len(one["alphas"]) and all(torch.equal(a, b) for a, b in zip(zero["alphas"], one["alphas"]))
    assert not _equal(zero["params"], one["params"]), _equal(zero["params"], one["params"])
    if variant != "spos":  # spos's evolution leaves each rank's BN statistics at its last candidate's
        assert not _equal(zero["buffers"], one["buffers"]), _equal(zero["buffers"], one["buffers"])
    epochs = [r["epoch"] for r in zero["records"] if "epoch" in r]
    assert epochs == list(range(1, VARIANTS[variant][1]["epochs"] + 1))
    assert zero["records"] == one["records"]  # rewards and losses are the replicas' common values
    if variant.startswith(("darts", "pc_darts")):
        assert max(float((a - b).abs().max()) for a, b in zip(zero["alphas"], ranks[0]["initial_alphas"])) > 1e-4  # alpha moved


def test_rank_0_decides_the_time_budget(ranks: list[dict[str, Any]]) -> None:
    zero, one = ranks[0]["deadline"], ranks[1]["deadline"]
    assert zero["records"][-1] == {"stopped": "time_budget", "epoch": 1} == one["records"][-1]
    assert [r["epoch"] for r in zero["records"] if "train_loss" in r] == [1]
    assert zero["genotype"] == one["genotype"] and all(torch.equal(a, b) for a, b in zip(zero["alphas"], one["alphas"]))


def test_resume_from_rank_0_checkpoint_ends_where_an_uninterrupted_run_does(ranks: list[dict[str, Any]]) -> None:
    whole = ranks[0]["darts"]
    for rank in ranks:
        resumed = rank["resumed"]
        assert resumed["genotype"] == whole["genotype"]
        assert all(torch.equal(a, b) for a, b in zip(resumed["alphas"], whole["alphas"]))
        assert not _equal(resumed["params"], whole["params"])
    lines = ranks[0]["resumed"]["log_lines"]
    assert len(lines) == 2 and '"stopped"' not in "".join(lines)  # the stop record came after the checkpoint: dropped


def test_shard_pulls_every_batch_in_groups_and_keeps_equal_shares() -> None:
    pulled: list[int] = []

    class Batches:
        def __len__(self) -> int:
            return 7

        def __iter__(self) -> Any:
            for i in range(7):
                pulled.append(i)
                yield i

    shards = [Shard(Batches(), r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [2, 2, 2]
    it = iter(shards[1])
    assert next(it) == 1 and pulled == [0, 1, 2]  # the whole first group, before its first batch is trained on
    assert list(it) == [4] and pulled == list(range(7))  # the rest of the pass is drawn as one process draws it
    assert [list(s) for s in (shards[0], shards[2])] == [[0, 3], [2, 5]]
    with pytest.raises(ValueError, match="cannot be shared by 8 processes"):
        Shard(Batches(), 0, 8)


def test_follower_argv_moves_hydra_out_of_outputs_on_ranks_above_0() -> None:
    argv = ["search=darts", "hydra.run.dir=outputs/x"]
    assert follower_argv(argv, World()) == argv and follower_argv(argv, World(rank=0, size=2)) == argv
    moved = follower_argv(argv, World(rank=1, size=2, local_rank=1))
    scratch = Path(moved[-2].partition("=")[2])
    assert moved[0] == "search=darts" and "hydra.run.dir=outputs/x" not in moved and moved[-1] == "hydra.output_subdir=null"
    assert scratch.parent == Path(tempfile.gettempdir()) and scratch.name.startswith("zoo-rank1-") and not scratch.exists()
    scratch.mkdir()  # as Hydra makes it
    drop_scratch_dir(Path.cwd())  # not a scratch directory: left alone
    drop_scratch_dir(scratch)
    assert not scratch.exists() and Path.cwd().is_dir()
    with pytest.raises(ValueError, match="one search at a time"):
        follower_argv(["-m", "search=darts,spos"], World(rank=0, size=2))
    assert World.from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}) == World(1, 2, 1)
    assert World.from_env({}) == World() and not World.from_env({"WORLD_SIZE": "1", "RANK": "0"}).distributed


def test_torchrun_cli_only_rank_0_writes(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    """``torchrun --nproc-per-node 2 -m zoo search=darts ...`` end to end: a success, one run directory
    with the bundle, no scratch directory left behind (16-28 s on 2 cores)."""
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {"PYTHONPATH": str(ROOT), "TMPDIR": str(scratch_root)}
    args = ["search=darts", "search.epochs=2", "trainer.epochs=1", "task.model.init_channels=8", "task.model.layers=2"]
    out = zoo_cli.run(*args, *DATA, "threads=1", "progress=false", launcher=multiprocess.torchrun(2), cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = [p for p in (tmp_path / "outputs").rglob("*") if p.is_dir() and p.name != ".hydra"]
    run = next(p for p in runs if (p / "metrics.json").is_file())
    assert {p.relative_to(tmp_path) for p in runs} == {run.relative_to(tmp_path), run.parent.relative_to(tmp_path)}
    assert {"model.safetensors", "genotype.json", "metrics.json", "search_log.jsonl"} <= {p.name for p in run.iterdir()}
    assert not (run / "oneshot_checkpoint.json").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"tmp", "outputs"}
    assert not list(scratch_root.glob("zoo-rank*")), list(scratch_root.iterdir())  # rank 1's Hydra directory is gone
    assert out.stdout.count("zoo run finished") == 1 and str(run.name) in out.stdout


def test_torchrun_takes_one_shot_searches_only() -> None:
    from zoo.__main__ import compose_config
    from zoo.config_values import ConfigError
    from zoo.pipeline import check_distributed

    two = World(rank=0, size=2)
    check_distributed(compose_config(["search=spos"]), two)
    check_distributed(compose_config(["search=random"]), World())  # one process: anything goes
    for overrides in (["search=random"], ["search=fixed", "search.arch=darts_v2"], ["mode=finetune"]):
        with pytest.raises(ConfigError) as err:
            check_distributed(compose_config(overrides), two)
        assert "allowed: search=darts, pc_darts, spos" in str(err.value) and "\n" not in str(err.value)
