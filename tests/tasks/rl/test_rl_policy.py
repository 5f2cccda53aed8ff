"""Searched policies inside stable-baselines3: the bundle's PolicyNet computes what SB3's policy computes
(Discrete and Box actions), PPO on a searched policy learns CartPole, and saved policies act the same
in a fresh process (SB3's zip and the zoo bundle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.sb3_fresh import fresh_process_actions
from stable_baselines3 import PPO

from tasks.rl.data import env_info
from tasks.rl.integrations.sb3 import RunPPO, ZooPolicy, policy_kwargs, policy_net, schedule, to_ppo
from tasks.rl.metrics import evaluate
from tasks.rl.space import PolicySpace, mlp_genotype
from tasks.rl.train import train_ppo
from zoo.hub.bundle import save_bundle

pytestmark = pytest.mark.usefixtures("one_thread")


def _genotype(seed: int):  # noqa: ANN202
    space = PolicySpace(steps=2)
    rng = np.random.default_rng(seed)
    return space.decode([int(rng.integers(c)) for c in space.cardinalities()])


def _ppo(env_id: str, genotype, seed: int = 0, **kw) -> RunPPO:  # noqa: ANN001
    from stable_baselines3.common.env_util import make_vec_env

    return RunPPO(
        ZooPolicy, make_vec_env(env_id, n_envs=2, seed=seed), policy_kwargs=policy_kwargs(genotype, 16, 2), seed=seed, device="cpu", **kw
    )


@torch.no_grad()
def _perturbed(policy: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for p in policy.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1"])
def test_policy_net_computes_what_the_sb3_policy_computes(env_id: str) -> None:
    info = env_info(env_id)
    ppo = _ppo(env_id, _genotype(1))
    _perturbed(ppo.policy)  # log_std and heads off their initial values
    if not info.discrete:
        with torch.no_grad():
            ppo.policy.action_net.bias.copy_(torch.tensor([3.0]))  # means beyond Pendulum's bounds [-2, 2]: predict clips them
    net = policy_net(ppo.policy, info.obs_dim, info.n_actions, info.discrete)
    space = ppo.policy.observation_space
    obs = np.stack([space.sample() for _ in range(16)])
    obs_t, _ = ppo.policy.obs_to_tensor(obs)
    features = ppo.policy.extract_features(obs_t)  # SB3's preprocessing: float Box, one-hot Discrete
    out, value = net(features)
    dist = ppo.policy.get_distribution(obs_t).distribution
    assert torch.allclose(value, ppo.policy.predict_values(obs_t)[:, 0], atol=1e-6)
    if info.discrete:
        assert out.shape == (16, info.n_actions)
        assert torch.allclose(torch.log_softmax(out, -1), dist.logits, atol=1e-6)
        assert torch.equal(net.act(features), torch.as_tensor(ppo.predict(obs, deterministic=True)[0]))
    else:
        assert out.shape == (16, info.n_actions)
        assert torch.allclose(out, dist.mean, atol=1e-6)
        assert torch.allclose(net.log_std, ppo.policy.log_std)
        acts = net.act(features)  # clipped to the bounds, as SB3's predict clips
        assert (acts.abs() <= 2.0).all() and (out > 2.0).any()
        assert torch.allclose(acts, torch.as_tensor(ppo.predict(obs, deterministic=True)[0]), atol=1e-6)


def test_a_short_ppo_run_beats_a_random_policy() -> None:
    episodes, seed = 10, 12345

    class Random:
        rng = np.random.default_rng(0)

        def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
            return self.rng.integers(0, 2, size=len(obs)), None

    random_return = float(np.mean(evaluate(Random(), "CartPole-v1", episodes, seed)))

    def make() -> RunPPO:
        from stable_baselines3.common.env_util import make_vec_env

        return RunPPO(
            ZooPolicy,
            make_vec_env("CartPole-v1", n_envs=8, seed=0),
            n_steps=32,
            batch_size=256,
            n_epochs=20,
            gamma=0.98,
            gae_lambda=0.8,
            learning_rate=schedule("linear", 1e-3),
            clip_range=schedule("linear", 0.2),
            policy_kwargs=policy_kwargs(mlp_genotype(2), 32, 1),
            seed=0,
            device="cpu",
        )

    ppo, curve = train_ppo(make, "CartPole-v1", 8192, 2, seed=0, eval_every=4096, eval_episodes=3)
    trained = float(np.mean(evaluate(ppo.policy, "CartPole-v1", episodes, seed)))
    assert len(curve) == 2 and [c["steps"] for c in curve] == [4096, 8192]
    assert random_return < 40, random_return  # CartPole's random policy falls within ~20 steps
    assert trained > 3 * random_return, (trained, random_return)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_saved_policies_act_the_same_in_a_fresh_process(env_id: str, tmp_path: Path, repo_root: Path) -> None:
    info = env_info(env_id)
    g = _genotype(4)
    ppo = _ppo(env_id, g, n_steps=64, batch_size=64, n_epochs=1)
    ppo.learn(256)  # trained a little: the weights are not the initial ones
    obs = np.stack([ppo.observation_space.sample() for _ in range(32)])
    expected = ppo.predict(obs, deterministic=True)[0].tolist()

    ppo.save(tmp_path / "policy.zip")
    net = policy_net(ppo.policy, info.obs_dim, info.n_actions, info.discrete)
    model_args = {
        "arch": g.to_json(),
        "obs_dim": info.obs_dim,
        "n_actions": info.n_actions,
        "discrete": info.discrete,
        "width": 16,
        "layers": 2,
    }
    save_bundle(tmp_path / "bundle", net, {"task": "rl", "model": model_args, "data": info.describe(), "metrics": {}})
    assert isinstance(PPO.load(tmp_path / "policy.zip", device="cpu").policy, ZooPolicy)

    got = fresh_process_actions(repo_root, tmp_path / "policy.zip", tmp_path / "bundle", obs)  # SB3's zip, then the bundle
    assert got[0] == expected, "zip: actions differ from the saving process"
    assert got[1] == expected, "bundle: actions differ from the saving process"
    assert to_ppo(tmp_path / "bundle").predict(obs, deterministic=True)[0].tolist() == expected


@pytest.mark.parametrize("env_id, target", [("CartPole-v1", 2_500), ("CartPole-v1", 135_000), ("Pendulum-v1", 20_000)])
def test_the_mlp_policy_family_reaches_each_size_within_ten_percent(env_id: str, target: int) -> None:
    """``task.baseline.params=N``: SB3 MlpPolicy widths whose parameter count is within 10% of N; a fixed
    ``task.baseline.net_arch`` is taken as given."""
    from helpers.tasks import build_task

    task = build_task(["task=rl", f"data.env={env_id}", f"task.baseline.params={target}"])
    arch, about = task.baseline_arch(searched_params=123)
    ppo = task.new_ppo("MlpPolicy", 0, {"net_arch": {"pi": arch, "vf": arch}})
    params = sum(p.numel() for p in ppo.policy.parameters())
    assert abs(params - target) <= 0.1 * target and about["params_within_tolerance"] and len(arch) == 2
    fixed = build_task(["task=rl", f"data.env={env_id}", "task.baseline.net_arch=[64,64]"])
    assert fixed.baseline_arch(searched_params=123) == ([64, 64], {"model": "stable-baselines3 MlpPolicy (pi and vf 64x64, tanh)"})
