"""Runners (``runner=local|process|ray``), worker deaths, driver kills, time budgets and ``-m`` sweeps.

Everything runs for real: NAS-Bench-201 table searches where only the search matters, tiny
digits trainings where a candidate must take long enough to be killed in the middle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import ZooCli, one_error_line
from helpers.nb201_home import nb201_zoo_home  # noqa: F401  (ZOO_HOME: a cache private to the tests)
from helpers.tiers import Processes
from omegaconf import OmegaConf

from zoo.__main__ import compose_config
from zoo.config_values import ConfigError, duration_seconds
from zoo.pipeline import build, build_checks
from zoo.runners.local import read_log, run_multi_trial

ROOT = Path(__file__).resolve().parent.parent
NB201 = ["space=nb201", "estimate=nb201", "search=evolution", "search.budget=16", "search.population_size=4", "search.sample_size=2"]
# a digits candidate that trains for about a second: long enough to be killed in the middle
DIGITS = ["search=random", "trainer.estimate_epochs=2", "trainer.epochs=1", "task.model.layers=2", "task.estimate_model.layers=2"]


def told(run_dir: Path) -> list[tuple[str, Any]]:
    """What the strategy was told, in order: (genotype key, reward)."""
    state = json.loads((run_dir / "strategy_state.json").read_text())
    return [(json.dumps(g, sort_keys=True), r["reward"]) for g, r in state["history"]]


@pytest.mark.requires("ray")
def test_process_and_ray_runners_make_the_same_search_as_local(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    """runner.workers=2 on every runner: the same candidates told in the same order, whatever finished first."""
    runs = {}
    for runner in ("local", "process", "ray"):
        r = zoo_cli.run(*NB201, f"runner={runner}", "runner.workers=2", run_dir=tmp_path / runner)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[runner] = told(tmp_path / runner)
        logged = read_log(tmp_path / runner / "search_log.jsonl")
        assert sorted(rec["trial"] for rec in logged) == list(range(16))
    assert len(runs["local"]) == 16
    assert runs["process"] == runs["local"] and runs["ray"] == runs["local"]
    # a search is decided by the batch, not the runner: one worker asks differently from two
    one = zoo_cli.run(*NB201, "runner=local", run_dir=tmp_path / "one")
    assert one.returncode == 0 and told(tmp_path / "one") != runs["local"]


def _kill_when_running(title: str, kills: list[int], stop: threading.Event) -> None:
    """SIGKILLs the first process whose title starts with ``title`` (Ray names a busy worker ``ray::<function>``)."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(title):
                time.sleep(0.5)  # well inside the candidate (it rebuilds the task, then trains)
                os.kill(int(pid), signal.SIGKILL)
                kills.append(int(pid))
                return
        time.sleep(0.05)


@pytest.mark.requires("ray")
def test_ray_worker_killed_mid_candidate_is_retried_then_recorded_failed(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    for retries, run in ((2, tmp_path / "retried"), (0, tmp_path / "failed")):
        kills: list[int] = []
        stop = threading.Event()
        killer = threading.Thread(target=_kill_when_running, args=("ray::_evaluate_candidate", kills, stop), daemon=True)
        killer.start()
        r = zoo_cli.run(
            *DIGITS, "search.budget=2", "runner=ray", "runner.workers=1", f"runner.max_retries={retries}", "threads=1", run_dir=run
        )
        stop.set()
        assert r.returncode == 0, r.stderr[-3000:]
        assert len(kills) == 1
        log = read_log(run / "search_log.jsonl")
        assert len(log) == 2 and json.loads((run / "metrics.json").read_text())["search_evaluations"] == 2 - (retries == 0)
        if retries:
            assert not any(rec.get("failed") for rec in log)
        else:  # the killed candidate is logged as failed with Ray's error, told as the worst result, and the search went on
            failed = [rec for rec in log if rec.get("failed")]
            assert len(failed) == 1 and "WorkerCrashedError" in failed[0]["error"] and failed[0]["trial"] == 0
            assert "(1 failed)" in r.stdout


def test_process_worker_killed_mid_candidate_is_retried(tmp_path: Path, multiprocess: Processes) -> None:
    from multiprocessing import active_children

    cfg = compose_config([*DIGITS, "search.budget=2", "runner=process", "runner.workers=2", "runner.max_retries=1", "threads=1"])
    run = build(cfg, tmp_path)
    kills: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not kills:
            workers = [p for p in active_children() if p.name.startswith("SpawnProcess")]
            if len(workers) == 2:
                time.sleep(4)  # both workers have rebuilt the task and are training their candidate
                os.kill(workers[0].pid, signal.SIGKILL)
                kills.append(workers[0].pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    strategy = run_multi_trial(run.strategy, None, tmp_path, progress=False, runner=run.runner)
    killer.join()
    assert kills and strategy.n_told == 2
    log = read_log(tmp_path / "search_log.jsonl")
    assert len(log) == 2 and not any(rec.get("failed") for rec in log)
    assert all(0 < rec["result"]["reward"] <= 1 for rec in log)


def test_driver_killed_at_five_points_loses_and_repeats_nothing(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    """SIGKILL of the driver after 1, 2, 3, 5 and 6 logged candidates (in flight in a process pool), each time resumed."""
    run = tmp_path / "run"
    args = [*DIGITS, "search=evolution", "search.budget=8", "search.population_size=4", "search.sample_size=2"]
    args += ["runner=process", "runner.workers=2", "threads=1"]
    log_path = run / "search_log.jsonl"
    orphans: set[int] = set()
    for i, lines in enumerate((1, 2, 3, 5, 6)):
        proc = zoo_cli.start(*args, *(["resume=true"] if i else []), run_dir=run, stderr=subprocess.PIPE)
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and len(read_log(log_path)) < lines:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        workers = multiprocess.children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        orphans.update(workers)
    final = zoo_cli.run(*args, "resume=true", run_dir=run)
    assert final.returncode == 0, final.stderr[-3000:]
    log = read_log(log_path)
    keys = [rec["key"] for rec in log]
    assert len(keys) == 8 and len(set(keys)) == 8, "a finished candidate was evaluated twice, or one was lost"
    assert sorted(rec["trial"] for rec in log) == list(range(8))
    history = told(run)
    assert len(history) == 8 and {k for k, _ in history} == {json.dumps(rec["genotype"], sort_keys=True) for rec in log}
    assert orphans and not [pid for pid in orphans if Path(f"/proc/{pid}").exists()], "a killed driver's pool workers lived on"


def test_deadline_stops_asking_after_the_batch_in_flight(tmp_path: Path) -> None:
    cfg = compose_config([*NB201, "runner=local", "runner.workers=3"])
    run = build(cfg, tmp_path)
    strategy = run_multi_trial(run.strategy, None, tmp_path, progress=False, runner=run.runner, deadline=time.time())
    assert strategy.n_told == 3 and strategy.stopped_by == "time_budget"
    resumed = build(cfg, tmp_path)
    strategy = run_multi_trial(resumed.strategy, None, tmp_path, resume=True, progress=False, runner=resumed.runner)
    assert strategy.n_told == 16 and strategy.stopped_by is None


def test_a_search_whose_candidates_all_fail_stops_and_resumes_once_fixed(tmp_path: Path) -> None:
    """Two batches of failures stop the search in one line; a resume with the cause fixed runs the
    failed candidate it re-asks again (the failures already told stay failed, and are never the winner)."""
    from zoo.runners.local import CandidatesFailed

    cfg = compose_config([*NB201[:2], "search=random", "search.budget=16", "runner.workers=2"])
    run = build(cfg, tmp_path)

    def broken(genotype: Any) -> dict[str, Any]:
        raise OSError("the tables went away")

    with pytest.raises(CandidatesFailed, match=r"^the first 4 candidates all failed \(last: OSError: the tables went away"):
        run_multi_trial(run.strategy, broken, tmp_path, progress=False, workers=2)
    log = read_log(tmp_path / "search_log.jsonl")
    assert len(log) == 4 and all(rec["failed"] for rec in log)
    again = build(cfg, tmp_path)
    strategy = run_multi_trial(again.strategy, again.estimator, tmp_path, resume=True, progress=False, workers=2)
    assert strategy.n_told == 16 and sum(bool(r.get("failed")) for _, r in strategy.history) == 3
    rerun = [rec for rec in read_log(tmp_path / "search_log.jsonl")[4:] if rec["key"] == log[3]["key"]]
    assert len(rerun) == 1 and "result" in rerun[0]  # the candidate in flight at the stop ran again
    assert not strategy.best()[1].get("failed")


def test_time_budget_ends_a_search_and_the_run_still_writes_its_bundle(tmp_path: Path, zoo_cli: ZooCli) -> None:
    r = zoo_cli.run(*DIGITS, "search.budget=50", "search.time_budget=1s", "threads=1", run_dir=tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stopped_by"] == "time_budget" and metrics["search_evaluations"] == 1  # a candidate trains for longer than 1 s
    assert (tmp_path / "run" / "model.safetensors").is_file() and 0 < metrics["test_accuracy"] <= 1
    assert "search.time_budget=1s ended the search" in r.stdout


def test_durations() -> None:
    assert [duration_seconds(v) for v in ("90s", "45m", "2h", "1h30m", "0.5h", 12, 1.5)] == [90, 2700, 7200, 5400, 1800, 12, 1.5]
    assert [duration_seconds(v) for v in ("", "45", "m", "-1s", 0, -3, "1x", True, None)] == [None] * 9


@pytest.mark.parametrize(
    "overrides,line",
    [
        (["search.time_budget=soon"], "search.time_budget='soon' is invalid; allowed: null or a duration such as 90s, 45m, 2h or 1h30m"),
        (["runner=process", "runner.workers=0"], "runner.workers=0 is invalid; allowed: an integer >= 1"),
        (["runner=ray", "runner.num_gpus=-1"], "runner.num_gpus=-1 is invalid; allowed: a number >= 0"),
        (
            ["runner=process", "search=darts"],
            "runner=process is invalid with search=darts, which trains one supernet; allowed: runner=local",
        ),
    ],
)
def test_bad_runner_and_budget_values_fail_in_one_line(overrides: list[str], line: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_checks(compose_config(overrides))
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


@pytest.mark.requires("ray")
def test_ray_candidates_on_cuda_must_ask_for_a_gpu() -> None:
    """Ray hides the GPUs from a task that asks for none, so every candidate would fail on device=cuda
    (checked through check_runner: this machine has no CUDA device, which build() refuses first)."""
    from zoo.pipeline import check_runner

    cfg = compose_config(["runner=ray"])
    cfg.device = "cuda:0"
    with pytest.raises(ConfigError, match=r"^runner.num_gpus=0 is invalid with device=cuda:0: Ray hides the GPUs"):
        check_runner(cfg, one_shot=False)
    cfg.runner.num_gpus = 0.5
    check_runner(cfg, one_shot=False)


def test_every_runner_key_has_a_spec() -> None:
    from zoo.runners.base import RUNNERS

    for name in RUNNERS.names():
        cfg = compose_config([f"runner={name}"])
        keys = {k for k in cfg.runner if k != "name"}
        assert keys == set(RUNNERS.get(name).specs), name


def test_workers_moved_to_runner_workers_in_one_line(tmp_path: Path, zoo_cli: ZooCli) -> None:
    r = zoo_cli.run("workers=2", run_dir=tmp_path / "run")
    assert "runner.workers" in one_error_line(r) and not (tmp_path / "run").exists()


@pytest.mark.requires("ray")
@pytest.mark.parametrize(
    "option,line",
    [
        ("runner.num_gpus=1", "runner.num_gpus=1 is invalid: no node of this Ray cluster has 1 CPUs and 1 GPUs for one candidate"),
        ("runner.address=auto", "runner.address=auto is invalid: no Ray cluster answers there"),
    ],
)
def test_ray_requests_that_cannot_be_met_fail_in_one_line(
    tmp_path: Path, option: str, line: str, zoo_cli: ZooCli, multiprocess: Processes
) -> None:
    r = zoo_cli.run(*NB201, "runner=ray", option, run_dir=tmp_path / "run", env={"RAY_ADDRESS": ""})
    assert one_error_line(r, alone=False).startswith(f"zoo: error: {line}"), r.stderr  # Ray may warn on stderr too
    assert not (tmp_path / "run" / "search_log.jsonl").exists()


@pytest.mark.requires("ray")
def test_ray_runner_joins_a_running_cluster(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    """``ray start --head`` (a cluster of one node on loopback), then ``runner.address=auto`` joins it."""
    ray_bin = Path(sys.executable).parent / "ray"
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live there (108-byte path limit)
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    start = subprocess.run(
        [str(ray_bin), "start", "--head", "--num-cpus=2", "--include-dashboard=false", "--node-ip-address=127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        r = zoo_cli.run(
            *NB201, "search.budget=6", "runner=ray", "runner.address=auto", run_dir=tmp_path / "run", env={"RAY_TMPDIR": env["RAY_TMPDIR"]}
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert len(read_log(tmp_path / "run" / "search_log.jsonl")) == 6
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.requires("hydra_plugins.hydra_submitit_launcher")
def test_multirun_over_two_groups_and_seeds_runs_and_summarises(tmp_path: Path, zoo_cli: ZooCli, multiprocess: Processes) -> None:
    sweep = tmp_path / "sweep"
    r = zoo_cli.run(
        "-m", *NB201[:2], "search=random,evolution", "runner=local,process", "seed=0,1", "search.budget=20", f"hydra.sweep.dir={sweep}"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((sweep / "sweep_summary.json").read_text())["experiments"]
    assert len(summary) == 8 and all(e["status"] == "finished" for e in summary)
    combos = {tuple(o for o in e["overrides"] if o.startswith(("search=", "runner=", "seed="))) for e in summary}
    assert len(combos) == 8
    for e in summary:  # each experiment in its own sub-directory, with the config it was asked for
        cfg = OmegaConf.load(Path(e["dir"]) / ".hydra" / "config.yaml")
        assert f"seed={cfg.seed}" in e["overrides"] and f"search={cfg.search.name}" in e["overrides"]
        assert len(read_log(Path(e["dir"]) / "search_log.jsonl")) == 20
    assert r.stdout.count("  finished  ") == 8 and "zoo sweep: 8 experiments" in r.stdout
    # the local submitit launcher: one process per experiment
    sweep2 = tmp_path / "submitit"
    r = zoo_cli.run("-m", *NB201[:3], "seed=0,1", "search.budget=20", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep2}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [e["status"] for e in json.loads((sweep2 / "sweep_summary.json").read_text())["experiments"]] == ["finished"] * 2


def test_a_failing_experiment_is_reported_and_the_sweep_goes_on(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """An error the pre-check cannot see (the data is read when a run starts): each experiment records
    it in error.txt, the summary marks it failed, and the sweep exits 1 after running all of them."""
    from PIL import Image

    (tmp_path / "data" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "data" / "cat" / f"{i}.png")
    sweep = tmp_path / "sweep"
    r = zoo_cli.run(
        "-m", "search=random", "search.budget=2", "data=folder", f"data.root={tmp_path / 'data'}", "seed=0,1", f"hydra.sweep.dir={sweep}"
    )
    assert r.returncode == 1, r.stderr[-3000:]
    rows = json.loads((sweep / "sweep_summary.json").read_text())["experiments"]
    assert [e["status"] for e in rows] == ["failed", "failed"]
    assert all("has one class" in e["error"] and (Path(e["dir"]) / "error.txt").is_file() for e in rows), rows
    assert r.stdout.count("  failed  ") == 2


def test_each_experiment_of_a_sweep_is_prechecked_in_one_line(tmp_path: Path, zoo_cli: ZooCli) -> None:
    r = zoo_cli.run("-m", "search=random,evolution", "search.population_size=4", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    line = one_error_line(r)
    assert line.startswith("zoo: error: [search=random search.population_size=4 progress=false] unknown option 'search.population_size'"), (
        line
    )
    assert not (tmp_path / "sweep").exists()
