"""The zoo's RL entry: it loads by name, plays to the return it records over the same 100 evaluation
episodes, and continues in stable-baselines3 and through mode=play."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import ZooCli
from helpers.tasks import private_cache  # noqa: F401  (autouse: a private ZOO_HOME)

import zoo
from zoo.hub.registry import load_entries

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cartpole_entry_reproduces_its_return() -> None:
    from tasks.rl.integrations.sb3 import to_ppo
    from tasks.rl.metrics import evaluate
    from tasks.rl.train import EVAL_SEED

    entry = load_entries()["cartpole-ppo-evolution"]
    assert entry.task == "rl" and entry.dataset == "CartPole-v1"
    assert entry.data["reproduce"] == "python -m zoo task=rl search=evolution seed=0"
    net = zoo.create_model("cartpole-ppo-evolution", pretrained=True)
    returns = evaluate(to_ppo("cartpole-ppo-evolution").policy, "CartPole-v1", 100, EVAL_SEED)
    assert float(np.mean(returns)) == pytest.approx(entry.metrics["test_mean_return"], abs=1.0)
    assert min(returns) >= 475  # solved on every episode; an untrained policy falls within ~20 steps
    assert net.discrete and net.obs_dim == 4


def test_play_runs_the_entry_by_name(tmp_path: Path, zoo_cli: ZooCli) -> None:
    out = zoo_cli.run(
        "mode=play", "checkpoint=cartpole-ppo-evolution", "play.episodes=3", "play.gif=false", run_dir=tmp_path, progress=None
    )
    assert out.returncode == 0, out.stderr[-2000:]
    played = json.loads((tmp_path / "play.json").read_text())
    assert played["env"] == "CartPole-v1" and len(played["returns"]) == 3 and played["mean_return"] >= 475
