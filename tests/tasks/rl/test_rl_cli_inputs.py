"""task=rl as a new user tries it (issue 20 item 7): an environment id whose module cannot be
imported (``phys2d/CartPole-v1`` and ``tabular/Blackjack-v0`` need jax; ``module:Env-v0`` names a
module to import first) ends the CLI in one line with exit status 2, before any work, rather than a
traceback ending in ``ModuleNotFoundError``; ``mode=play`` prints no training warning."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.cli import ZooCli, one_error_line

JAX = importlib.util.find_spec("jax") is not None


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        pytest.param(
            "phys2d/CartPole-v1",
            "needs a module that cannot be imported: No module named 'jax'",
            marks=pytest.mark.skipif(JAX, reason="jax is installed"),
        ),
        ("zoo_test_no_such_module:Foo-v0", "needs a module that cannot be imported: No module named 'zoo_test_no_such_module'"),
    ],
    ids=["jax-env", "module-prefix"],
)
def test_an_env_whose_module_is_missing_fails_in_one_line(zoo_cli: ZooCli, tmp_path: Path, env: str, expect: str) -> None:
    run = tmp_path / "run"
    proc = zoo_cli.run("task=rl", f"data.env={env}", run_dir=run, timeout=300)
    line = one_error_line(proc)
    assert line.startswith(f"zoo: error: data.env={env} {expect}"), line
    # the environment is made when the task sets up, after Hydra has recorded the config: nothing else is written
    assert {p.name for p in run.iterdir()} <= {".hydra"} if run.exists() else True


def test_play_prints_no_training_warning(zoo_cli: ZooCli, tmp_path: Path) -> None:
    """``mode=play`` trains nothing: SB3's warning about a truncated mini-batch (a PPO on one environment
    with the batch size of eight) must not appear; ``to_ppo`` makes as many environments as training ran."""
    run = tmp_path / "play"
    proc = zoo_cli.run(
        "mode=play",
        "checkpoint=cartpole-ppo-evolution",
        "play.episodes=1",
        "play.gif=false",
        run_dir=run,
        env={"ZOO_HOME": str(tmp_path / "home")},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mini-batch" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr[-3000:]
    assert "mean_return" in proc.stdout


def test_to_ppo_runs_the_trained_number_of_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from tasks.rl.integrations.sb3 import to_ppo

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's mini-batch warning is a UserWarning
        ppo = to_ppo("cartpole-ppo-evolution")
    assert ppo.n_envs == 8 and ppo.n_steps * ppo.n_envs % ppo.batch_size == 0
