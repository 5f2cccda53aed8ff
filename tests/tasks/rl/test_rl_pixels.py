"""task=rl from pixels: the MinAtar games (Young & Tian 2019, arXiv:1903.03176) as gymnasium environments,
the searched DARTS-cell encoder as SB3's features extractor (what the bundle computes is what SB3's policy
computes; saved policies act the same in a fresh process), the MinAtar network as the same-size baseline,
search=darts training the image supernet inside PPO, and a missing minatar refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.sb3_fresh import fresh_process_actions
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs

from tasks.rl.data import MINATAR_PIP, env_info, make_env
from tasks.rl.integrations.sb3 import ZooPolicy, policy_net, to_ppo
from zoo.config_values import ConfigError
from zoo.space.genotype import Genotype
from zoo.task import DataError

pytestmark = pytest.mark.usefixtures("one_thread")

ENV = "MinAtar/Breakout-v1"
TINY = [
    "task=rl",
    f"data.env={ENV}",
    *(f"task.{part}.width=4" for part in ("model", "estimate_model", "supernet")),
    "task.gif=false",
    "trainer.steps=256",
    "trainer.epochs=2",
    "trainer.estimate_steps=128",
    "trainer.estimate_seeds=1",
    "trainer.eval_every=128",
    "trainer.curve_episodes=2",
    "trainer.eval_episodes=3",
    "trainer.n_envs=2",
    "trainer.n_steps=64",
    "trainer.batch_size=64",
    "trainer.n_epochs=1",
]


def _task(*extra: str) -> Any:
    from helpers.tasks import build_task

    return build_task([*TINY, *extra])


def _episode(env_id: str, seed: int, actions: list[int], **kwargs: Any) -> tuple[list[np.ndarray], list[float], bool, bool]:
    env = make_env(env_id, **kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        frames, rewards, terminated, truncated = [obs], [], False, False
        for a in actions:
            obs, r, terminated, truncated, _ = env.step(a)
            frames.append(obs)
            rewards.append(r)
            if terminated or truncated:
                break
    finally:
        env.close()
    return frames, rewards, terminated, truncated


def test_minatar_games_are_channel_first_binary_seeded_and_end() -> None:
    for game, channels, actions in (("Breakout", 4, 3), ("SpaceInvaders", 6, 4), ("Asterix", 4, 5), ("Freeway", 7, 3), ("Seaquest", 10, 6)):
        info = env_info(f"MinAtar/{game}-v1")
        assert info.obs_shape == (channels, 10, 10) and info.n_actions == actions and info.discrete and not info.scaled
    env = make_env(ENV)
    space = env.observation_space
    env.close()
    assert space.dtype == np.uint8 and space.shape == (4, 10, 10) and float(space.high.max()) == 1.0
    assert not is_image_space(space)  # so SB3 neither transposes nor divides these 0/1 planes by 255
    rng = np.random.default_rng(0)
    actions = [int(a) for a in rng.integers(0, 3, size=400)]
    a, ra, terminated, _ = _episode(ENV, 5, actions)
    b, rb, _, _ = _episode(ENV, 5, actions)
    c, _, _, _ = _episode(ENV, 6, actions)
    assert terminated and len(a) < 400, "a random Breakout policy loses the ball within 400 steps"
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)) and ra == rb  # seeded: ball, sticky actions
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    assert set(np.unique(np.stack(a))) <= {0, 1} and np.stack(a)[:, 3].sum() > 0  # bricks are plane 3
    features = preprocess_obs(torch.as_tensor(np.stack(a[:4])), space)
    assert features.dtype == torch.float32 and float(features.max()) == 1.0
    _, _, terminated, truncated = _episode(ENV, 5, [0] * 50, max_episode_steps=3)
    assert truncated and not terminated


def test_a_missing_minatar_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.space.base import SPACES

    monkeypatch.setitem(sys.modules, "minatar", None)  # what an environment without the package gives import machinery
    with pytest.raises(DataError) as e:
        env_info("MinAtar/Seaquest-v1")
    assert str(e.value) == f"data.env=MinAtar/Seaquest-v1 needs the minatar package, which is not installed: {MINATAR_PIP}"
    assert not SPACES.get("policy")(env="MinAtar/Seaquest-v1").image  # the space falls back; the task's set-up says why


def test_plugins_and_vector_tasks_do_not_import_minatar(repo_root: Path) -> None:
    code = (
        "import sys; import zoo.plugins as p; p.load_plugins()\n"
        "from zoo.space.base import SPACES; SPACES.get('policy')(env='CartPole-v1')\n"
        "from tasks.rl.data import env_info; env_info('CartPole-v1')\n"
        "print('minatar' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_policy_space_searches_image_cells_for_image_observations() -> None:
    task = _task()
    space = task.space
    assert space.image and space.primitives[0] == "none" and "sep_conv_3x3" in space.ops
    g = space.sample(np.random.default_rng(3))
    assert isinstance(g, Genotype) and space.decode(space.encode(g)) == g and space.genotype_from_json(g.to_json()) == g
    cfg = task.model_config(g)
    assert cfg["obs_shape"] == [4, 10, 10] and cfg["arch"]["space"] == "darts"
    x = task.example_input()
    assert x.shape == (1, 4, 10, 10) and set(x.unique().tolist()) <= {0.0, 1.0}  # not divided by 255
    logits, value = task.build_model(g)(x)
    assert logits.shape == (1, 3) and value.shape == (1,)
    with pytest.raises(ConfigError) as e:  # a space pinned to another environment than data.env
        _task("space.env=CartPole-v1")
    assert str(e.value).startswith("space.env=CartPole-v1 gives the policy space dense towers, but data.env=MinAtar/Breakout-v1 has")


@torch.no_grad()
def _perturbed(policy: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for p in policy.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_the_bundle_net_computes_what_the_sb3_image_policy_computes() -> None:
    task = _task()
    g = task.space.sample(np.random.default_rng(1))
    ppo = task._zoo_ppo(g, True, 0)
    assert isinstance(ppo.policy, ZooPolicy) and type(ppo.policy.features_extractor).__name__ == "CellFeatures"
    ppo.learn(128)  # BN statistics and weights off their initial values
    _perturbed(ppo.policy)
    ppo.policy.set_training_mode(False)
    net = policy_net(ppo.policy, task.info.obs_dim, task.info.n_actions, True)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ppo.policy.parameters())
    obs = np.stack([ppo.observation_space.sample() for _ in range(16)])
    obs_t, _ = ppo.policy.obs_to_tensor(obs)
    logits, value = net(preprocess_obs(obs_t, ppo.observation_space))
    assert torch.allclose(torch.log_softmax(logits, -1), ppo.policy.get_distribution(obs_t).distribution.logits, atol=1e-5)
    assert torch.allclose(value, ppo.policy.predict_values(obs_t)[:, 0], atol=1e-5)
    assert torch.equal(net.act(obs_t.float()), torch.as_tensor(ppo.predict(obs, deterministic=True)[0]))


def test_saved_image_policies_act_the_same_in_a_fresh_process(tmp_path: Path, repo_root: Path) -> None:
    from zoo.hub.bundle import save_bundle

    task = _task()
    g = task.space.sample(np.random.default_rng(2))
    ppo = task._zoo_ppo(g, True, 0)
    ppo.learn(128)
    obs = np.stack([ppo.observation_space.sample() for _ in range(24)])
    expected = ppo.predict(obs, deterministic=True)[0].tolist()
    ppo.save(tmp_path / "policy.zip")
    net = policy_net(ppo.policy, task.info.obs_dim, task.info.n_actions, True)
    config = {"task": "rl", "model": task.model_config(g), "data": task.describe_data(), "metrics": {}}
    save_bundle(tmp_path / "bundle", net, config)
    got = fresh_process_actions(repo_root, tmp_path / "policy.zip", tmp_path / "bundle", obs)  # SB3's zip, then the bundle
    assert got == [expected, expected]
    again = to_ppo(tmp_path / "bundle")
    assert again.predict(obs, deterministic=True)[0].tolist() == expected
    again.learn(128)  # the hand-off keeps training (PPO's settings from the bundle)
    assert again.num_timesteps >= 128


def test_the_minatar_baseline_is_the_paper_network_scaled_to_size() -> None:
    from tasks.rl.integrations.sb3 import MinAtarPolicy

    task = _task()

    def params(arch: list[int]) -> int:
        policy, kwargs = task.baseline_policy(arch)
        assert policy is MinAtarPolicy
        return sum(p.numel() for p in task.new_ppo(policy, 0, kwargs).policy.parameters())

    # the paper's network on Breakout's 4 planes: conv 4*16*9 + 16, fc 16*8*8*128 + 128, heads 3*128 + 3 and 128 + 1
    assert params([16, 128]) == 592 + 131_200 + 387 + 129 == 132_308
    for target in (20_000, 107_000, 600_000):
        arch, about = task.baseline_arch(target)
        got = params(arch)
        assert abs(got - target) <= 0.1 * target and about["params_within_tolerance"] and about["params_target"] == target
        assert abs(arch[1] / arch[0] - 8) <= 1.5  # both widths scaled by one multiplier (16 channels : 128 units)
    assert _task("task.baseline.net_arch=[16,128]").baseline_arch(5)[0] == [16, 128]
    with pytest.raises(ConfigError) as e:
        _task("task.baseline.net_arch=[64,64,64]").baseline_arch(5)
    assert str(e.value).startswith("task.baseline.net_arch=[64, 64, 64] is invalid with image observations")


def test_retraining_on_minatar_trains_the_same_size_baseline_beside_it() -> None:
    task = _task()
    g = task.space.sample(np.random.default_rng(4))
    model, m = task.retrain(g)
    b = m["baseline"]
    assert b["model"].startswith("MinAtar network (Young & Tian 2019") and b["params_within_tolerance"]
    assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"] and b["params_ratio"] == round(
        m["params_baseline"] / m["params"], 4
    )
    assert m["train_steps"] == b["steps"] == 256 and [c["steps"] for c in m["curve"]] == [128, 256] == [c["steps"] for c in b["curve"]]
    assert m["searched_minus_baseline"] == {"mean_return": m["test_mean_return"] - m["test_mean_return_baseline"]}
    assert sum(p.numel() for p in model.parameters()) == m["params"]


def test_darts_trains_the_image_supernet_inside_ppo() -> None:
    from zoo.search.base import STRATEGIES

    task = _task("task.supernet.rollouts=2")
    problem = task.one_shot_problem()
    net = problem.supernet
    assert type(net).__name__ == "SuperImagePolicy" and len(net.arch_parameters()) == 2
    before = [a.detach().clone() for a in net.arch_parameters()]
    weights_before = net.features_extractor.head[1].weight.detach().clone()
    strategy = STRATEGIES.get("darts")(progress=False, epochs=2, warmup_epochs=0, arch_lr=0.01)
    genotype = strategy.search(problem)
    assert isinstance(genotype, Genotype) and genotype.steps == task.space.steps
    assert {op for op, _ in (*genotype.normal, *genotype.reduce)} <= set(task.space.ops)
    assert all(not torch.equal(a, b) for a, b in zip(before, net.arch_parameters()))
    assert not torch.equal(weights_before, net.features_extractor.head[1].weight)
    assert genotype == task.space.decode(task.space.encode(genotype))


def test_the_cli_searches_minatar_and_writes_both_policies(tmp_path: Path, zoo_cli: Any) -> None:
    from PIL import Image

    run = tmp_path / "run"
    out = zoo_cli.run(*TINY, "search=random", "search.budget=2", "task.gif=true", "threads=1", "progress=false", run_dir=run, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["obs_shape"] == [4, 10, 10] and cfg["model"]["arch"]["space"] == "darts" and cfg["data"]["obs_scaled_by"] == 1
    assert m["baseline"]["model"].startswith("MinAtar network") and abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"]
    assert m["train_steps"] == 256 and "searched_minus_baseline" in m and "score_baseline" in m
    gif = Image.open(run / "episode.gif")
    assert gif.size == (320, 320) and gif.n_frames >= 2
    # the card names the image ops the space searched, not the dense ops of the same `policy` space's config
    card = (run / "README.md").read_text()
    assert "candidate ops `none`, `max_pool_3x3`" in card and "dense_tanh" not in card
    assert cfg["search"]["ops"] == cfg["run_config"]["space"]["image_primitives"]
    assert "seeds that no training run or candidate evaluation used" in card
