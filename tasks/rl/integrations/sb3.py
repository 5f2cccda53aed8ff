"""stable-baselines3 hand-off: searched policies inside SB3's ``PPO``.

:class:`ZooPolicy` is SB3's ``ActorCriticPolicy`` with its MLP extractor replaced by the two
towers of a :class:`tasks.rl.space.PolicyGenotype` (``_build_mlp_extractor``); the genotype,
width and depth are constructor parameters, so ``PPO.save`` / ``PPO.load`` keep them. SB3's
own action head, value head, distributions and orthogonal initialisation are kept, so a
searched policy trains exactly as SB3 trains its ``MlpPolicy``.

:func:`to_ppo` turns a zoo bundle (safetensors + JSON, or a zoo entry name) into a ready
``PPO`` object with the PPO settings it was trained with; ``ppo.save("policy.zip")`` then gives
SB3's own format (which SB3 reads with cloudpickle: load only zips you made yourself).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from tasks.rl.model import DenseExtractor, PolicyNet
from tasks.rl.space import PolicyGenotype
from zoo.device import model_device


class ZooPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` whose policy and value networks are the genotype's dense-cell towers."""

    def __init__(self, *args: Any, genotype: dict[str, Any], width: int = 64, layers: int = 1, **kwargs: Any) -> None:
        self.genotype = dict(genotype)  # set before the parent constructor, which calls _build_mlp_extractor
        self.width, self.layers = int(width), int(layers)
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = DenseExtractor(PolicyGenotype.from_json(self.genotype), self.features_dim, self.width, self.layers)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "genotype": self.genotype, "width": self.width, "layers": self.layers}


class RunPPO(PPO):
    """``PPO`` whose schedules (learning rate, clip range) run over ``run_total_timesteps``, the whole
    training, rather than over each ``learn`` call: training in chunks (one per checkpoint) then
    follows the same schedule as one call."""

    run_total_timesteps: int | None = None

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        super()._update_current_progress_remaining(num_timesteps, self.run_total_timesteps or total_timesteps)


def schedule(kind: str, value: float) -> Any:
    """SB3 schedule: ``constant`` or ``linear`` (from ``value`` down to 0 over the run, rl-zoo3's ``lin_``)."""
    from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule

    if kind == "linear":
        return LinearSchedule(float(value), 0.0, 1.0)
    return ConstantSchedule(float(value))


def policy_kwargs(genotype: PolicyGenotype, width: int, layers: int) -> dict[str, Any]:
    return {"genotype": genotype.to_json(), "width": int(width), "layers": int(layers)}


def ppo_kwargs(hp: dict[str, Any]) -> dict[str, Any]:
    """``PPO`` keyword arguments from the task's settings (:func:`tasks.rl.data.ppo_settings`)."""
    return {
        "learning_rate": schedule(hp["lr_schedule"], hp["lr"]),
        "clip_range": schedule(hp["lr_schedule"], hp["clip_range"]),
        "n_steps": int(hp["n_steps"]),
        "batch_size": int(hp["batch_size"]),
        "n_epochs": int(hp["n_epochs"]),
        "gamma": float(hp["gamma"]),
        "gae_lambda": float(hp["gae_lambda"]),
        "ent_coef": float(hp["ent_coef"]),
        "vf_coef": float(hp["vf_coef"]),
        "max_grad_norm": float(hp["max_grad_norm"]),
    }


def policy_net(policy: ActorCriticPolicy, obs_dim: int, n_actions: int, discrete: bool) -> PolicyNet:
    """The bundle model (:class:`PolicyNet`) of a :class:`ZooPolicy`, weights copied by name (Box actions keep their bounds)."""
    if not isinstance(policy, ZooPolicy):
        raise TypeError(f"policy_net() needs a ZooPolicy, not {type(policy).__name__}")
    low = high = None
    if not discrete:
        low, high = [float(v) for v in policy.action_space.low], [float(v) for v in policy.action_space.high]
    net = PolicyNet(PolicyGenotype.from_json(policy.genotype), obs_dim, n_actions, discrete, policy.width, policy.layers, 0.0, low, high)
    load_policy_weights(net, policy)
    return net.eval()


def load_policy_weights(dst: torch.nn.Module, src: torch.nn.Module) -> None:
    """Copies every tensor of ``dst`` from the same name in ``src`` (a PolicyNet and a ZooPolicy share names)."""
    theirs = src.state_dict()
    missing = [k for k in dst.state_dict() if k not in theirs]
    if missing:
        raise ValueError(f"the policies differ: {missing[0]!r} has no counterpart")
    dst.load_state_dict({k: theirs[k] for k in dst.state_dict()}, strict=True)


def to_ppo(checkpoint: Any, env: Any = None, device: torch.device | str | None = None, **kwargs: Any) -> PPO:
    """A ``PPO`` with the searched policy of ``checkpoint`` (zoo entry name, bundle directory or
    ``(PolicyNet, config)``), on ``env`` (an env id or object; default: the environment it was trained on;
    an id is made as many times as training ran environments in parallel), with the PPO settings it was
    trained with (``kwargs`` override them), so ``learn`` continues as training did.
    ``device``: where the PPO runs (default: where the policy's weights are; a loaded bundle's are on the CPU)."""
    if isinstance(checkpoint, tuple):
        net, config = checkpoint
    else:
        from zoo.hub.api import resolve_bundle
        from zoo.hub.bundle import load_bundle

        net, config = load_bundle(resolve_bundle(checkpoint, progress=False)[0])
    if config.get("task") != "rl":
        raise ValueError(f"checkpoint {checkpoint!r} is a {config.get('task')} model, not an RL policy")
    model_args = config["model"]
    env = env or config["data"]["env"]
    trained = config.get("data", {}).get("ppo")
    settings = ppo_kwargs(trained) if trained else {}
    if isinstance(env, str) and trained and int(trained.get("n_envs") or 1) > 1:
        # as many copies as training ran: SB3 makes one of an id, and a rollout of n_steps * 1 would not
        # hold the trained batch_size (SB3 warns about a truncated mini-batch; `learn` would differ from training)
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(env, n_envs=int(trained["n_envs"]))
    ppo = PPO(
        ZooPolicy,
        env,
        policy_kwargs=policy_kwargs(net.genotype, model_args["width"], model_args["layers"]),
        verbose=0,
        device=model_device(net) if device is None else device,
        **{**settings, **kwargs},
    )
    load_policy_weights(ppo.policy, net)
    return ppo
