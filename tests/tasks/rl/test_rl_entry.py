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


def test_minatar_entry_reproduces_its_return_and_beats_its_baseline() -> None:
    from tasks.rl.integrations.sb3 import to_ppo
    from tasks.rl.metrics import evaluate
    from tasks.rl.train import EVAL_SEED

    entry = load_entries()["minatar-breakout-darts"]
    assert entry.task == "rl" and entry.dataset == "MinAtar/Breakout-v1" and entry.data["strategy"] == "darts"
    assert entry.data["reproduce"] == "python -m zoo task=rl data.env=MinAtar/Breakout-v1"
    returns = evaluate(to_ppo("minatar-breakout-darts").policy, "MinAtar/Breakout-v1", 100, EVAL_SEED)
    # a flipped near-tie action on another CPU changes one episode by a few points, the mean by a few hundredths
    assert float(np.mean(returns)) == pytest.approx(entry.metrics["test_mean_return"], abs=0.3)
    assert float(np.mean(returns)) > entry.metrics["test_mean_return_baseline"] + 1.0  # an untrained policy scores ~0.8
    assert abs(entry.metrics["params_baseline"] - entry.data["params"]) <= 0.1 * entry.data["params"]


def test_play_draws_the_minatar_entry_in_colour(tmp_path: Path, zoo_cli: ZooCli) -> None:
    from PIL import Image

    out = zoo_cli.run("mode=play", "checkpoint=minatar-breakout-darts", "play.episodes=2", run_dir=tmp_path, progress=None)
    assert out.returncode == 0, out.stderr[-2000:]
    played = json.loads((tmp_path / "play.json").read_text())
    assert played["env"] == "MinAtar/Breakout-v1" and len(played["returns"]) == 2 and played["gif"] == "episode.gif"
    gif = Image.open(tmp_path / "episode.gif")
    assert gif.n_frames > 10 and gif.size == (320, 320)  # 10x10 cells scaled up
    frame = np.asarray(gif.convert("RGB"))
    cells = frame[16::32, 16::32]  # one pixel from the middle of each cell
    colours = {tuple(c) for c in cells.reshape(-1, 3)}
    assert len(colours) >= 3 and any(len(set(c)) > 1 for c in colours)  # background and objects, not grey levels
    assert (frame[:32, :32] == frame[0, 0]).all()  # each cell is one flat block: scaled up without blurring
