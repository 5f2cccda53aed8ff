"""task=rl through the CLI: a tiny search run writes a bundle, learning curves and an episode GIF;
mode=play replays it (task read from the checkpoint) with the returns an in-process evaluation gives;
search=darts moves the supernet's architecture weights; fine-tuning refuses another action space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import ZooCli
from helpers.shared import once_per_run
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=rl",
    "task.model.width=16",
    "task.estimate_model.width=8",
    "task.supernet.width=8",
    "trainer.steps=2048",
    "trainer.epochs=2",
    "trainer.estimate_steps=512",
    "trainer.estimate_seeds=2",
    "trainer.eval_every=1024",
    "trainer.curve_episodes=2",
    "trainer.eval_episodes=4",
    "threads=1",
    "progress=false",
]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, zoo_cli: ZooCli) -> Path:
    """A finished tiny search run, made once per test run and only read by the tests."""

    def search(d: Path) -> None:
        out = zoo_cli.run(*TINY, "search=random", "search.budget=2", run_dir=d / "run", timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]

    return once_per_run(tmp_path_factory, "rl-run", search) / "run"


def test_a_search_run_writes_bundle_curves_and_gif(run_dir: Path) -> None:
    m = json.loads((run_dir / "metrics.json").read_text())
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["task"] == "rl" and cfg["data"]["env"] == "CartPole-v1" and cfg["model"]["width"] == 16
    assert 30 < m["test_mean_return"] <= 500 and m["train_steps"] == 2048  # a random CartPole policy lasts ~22 steps
    # SB3's MlpPolicy with two equal layers sized to the searched policy (64x64 would be 9155 on CartPole)
    assert m["baseline"]["model"].startswith("stable-baselines3 MlpPolicy") and m["baseline"]["params_within_tolerance"]
    assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"] and m["baseline"]["params_target"] == m["params"]
    assert m["baseline"]["params_ratio"] == round(m["params_baseline"] / m["params"], 4)
    assert m["searched_minus_baseline"] == {"mean_return": m["test_mean_return"] - m["test_mean_return_baseline"]}
    assert [c["steps"] for c in m["curve"]] == [1024, 2048] == [c["steps"] for c in m["baseline"]["curve"]]
    log = [json.loads(line) for line in (run_dir / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(len(e["result"]["scores_per_seed"]) == len(e["result"]["curves"]) == 2 for e in log)
    gif = Image.open(run_dir / "episode.gif")
    assert gif.n_frames > 5 and gif.size[0] == 320
    assert Image.open(run_dir / "curve.png").size[0] > 400


def test_play_replays_the_bundle_in_its_environment(run_dir: Path, tmp_path: Path, repo_root: Path, zoo_cli: ZooCli) -> None:
    from tasks.rl.integrations.sb3 import to_ppo
    from tasks.rl.metrics import evaluate

    out = zoo_cli.run(
        "mode=play",
        f"checkpoint={run_dir}",
        "play.episodes=3",
        "play.seed=7",
        f"hydra.run.dir={tmp_path / 'play'}",
        cwd=tmp_path,
        progress=None,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    played = json.loads((tmp_path / "play" / "play.json").read_text())
    expected = evaluate(to_ppo(run_dir).policy, "CartPole-v1", 3, 7)
    assert played["env"] == "CartPole-v1" and played["returns"] == expected
    assert played["mean_return"] == pytest.approx(float(np.mean(expected))) and played["std_return"] == pytest.approx(
        float(np.std(expected))
    )
    assert f"mean_return       {np.mean(expected):.2f}" in out.stdout
    assert (tmp_path / "play" / "episode.gif").is_file()

    v0 = zoo_cli.run(
        "mode=play",
        f"checkpoint={run_dir}",
        "data.env=CartPole-v0",
        "play.episodes=2",
        f"hydra.run.dir={tmp_path / 'v0'}",
        cwd=tmp_path,
        progress=None,
        timeout=900,
    )
    assert v0.returncode == 0, v0.stderr[-2000:]
    assert json.loads((tmp_path / "v0" / "play.json").read_text())["env"] == "CartPole-v0"  # same spaces, another environment

    other = zoo_cli.run(
        "mode=play",
        f"checkpoint={run_dir}",
        "data.env=Pendulum-v1",
        f"hydra.run.dir={tmp_path / 'p2'}",
        cwd=tmp_path,
        progress=None,
        timeout=900,
    )
    assert other.returncode != 0
    assert (
        other.stderr.strip()
        .splitlines()[-1]
        .startswith("zoo: error: data.env=Pendulum-v1 has Box observations of size 3 and Box actions of 1 dimensions; checkpoint=")
    )


def test_finetune_on_another_env_with_the_same_spaces(run_dir: Path, tmp_path: Path, repo_root: Path, zoo_cli: ZooCli) -> None:
    from tasks.rl.integrations.sb3 import to_ppo
    from tasks.rl.metrics import evaluate
    from tasks.rl.train import EVAL_SEED

    d = tmp_path / "ft"
    out = zoo_cli.run(
        *TINY,
        "mode=finetune",
        f"checkpoint={run_dir}",
        "data.env=CartPole-v0",
        "finetune.epochs=2",
        f"hydra.run.dir={d}",
        cwd=repo_root,
        progress=None,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((d / "metrics.json").read_text())
    assert (
        m["env"] == "CartPole-v0" and m["steps"] == 2048 and m["epochs"] == 2 and m["freeze_epochs"] == 2
    )  # finetune.freeze_epochs default
    parent = evaluate(to_ppo(run_dir).policy, "CartPole-v0", 4, EVAL_SEED)
    assert m["test_mean_return_before"] == pytest.approx(float(np.mean(parent)))  # the parent's return on the new environment
    after = evaluate(to_ppo(d).policy, "CartPole-v0", 4, EVAL_SEED)
    assert m["test_mean_return"] == pytest.approx(float(np.mean(after)))  # the bundle holds the fine-tuned policy
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["data"]["env"] == "CartPole-v0" and cfg["finetuned_from"]["checkpoint"] == str(run_dir)


def test_finetune_on_an_env_with_other_spaces_fails_in_one_line(run_dir: Path, tmp_path: Path, repo_root: Path, zoo_cli: ZooCli) -> None:
    out = zoo_cli.run(
        "task=rl",
        "mode=finetune",
        f"checkpoint={run_dir}",
        "data.env=Acrobot-v1",
        f"hydra.run.dir={tmp_path / 'ft'}",
        cwd=repo_root,
        progress=None,
        timeout=900,
    )
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        f"zoo: error: data.env=Acrobot-v1 has Box observations of size 6 and 3 Discrete actions; checkpoint={run_dir} "
        "takes Box observations of size 4 and 2 Discrete actions"
    ), last


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["mode=play", "checkpoint=/no/such/run"], "checkpoint=/no/such/run does not exist"),
        (
            ["mode=play", "checkpoint=digits-darts", "data.env=CartPole-v1"],
            "checkpoint=digits-darts is a classification model, which has no play mode",
        ),
        (["task=rl", "search=darts", "search.order=2"], "search.order=2 is invalid with task=rl"),
    ],
)
def test_bad_play_and_search_options_fail_in_one_line(
    args: list[str], error: str, tmp_path: Path, repo_root: Path, zoo_cli: ZooCli
) -> None:
    out = zoo_cli.run(*args, f"hydra.run.dir={tmp_path / 'x'}", cwd=repo_root, progress=None, timeout=900)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"zoo: error: {error}"), out.stderr[-1000:]


def test_darts_moves_the_architecture_weights(tmp_path: Path, repo_root: Path, zoo_cli: ZooCli) -> None:
    d = tmp_path / "darts"
    out = zoo_cli.run(
        *TINY,
        "search=darts",
        "search.epochs=2",
        "search.warmup_epochs=0",
        "task.supernet.rollouts=2",
        f"hydra.run.dir={d}",
        cwd=repo_root,
        progress=None,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    log = [json.loads(line) for line in (d / "search_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    for tower in ("policy", "value"):
        w = np.array(log[-1][tower])
        assert w.shape == (5, 10) and np.allclose(w.sum(1), 1)
        assert np.abs(w - 0.1).max() > 1e-3, f"the {tower} tower's architecture weights stayed uniform"
    g = json.loads((d / "genotype.json").read_text())
    assert g["space"] == "policy" and len(g["cell"]["normal"]) == 4
    assert json.loads((d / "metrics.json").read_text())["test_mean_return"] > 0
