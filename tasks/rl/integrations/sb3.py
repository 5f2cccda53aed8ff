"""stable-baselines3 hand-off: searched policies inside SB3's ``PPO``.

:class:`ZooPolicy` is SB3's ``ActorCriticPolicy`` with its MLP extractor replaced by the two
towers of a :class:`tasks.rl.space.PolicyGenotype` (``_build_mlp_extractor``); the genotype,
width and depth are constructor parameters, so ``PPO.save`` / ``PPO.load`` keep them. SB3's
own action head, value head, distributions and orthogonal initialisation are kept, so a
searched policy trains exactly as SB3 trains its ``MlpPolicy``. For image observations (a DARTS
genotype) it is SB3's ``CnnPolicy`` layout instead: the searched encoder is the shared
``features_extractor`` (:class:`CellFeatures`) and the heads read its features (``net_arch=[]``);
SB3 keeps moving uint8 images channel-first and dividing them by 255 (``normalize_images``), and
reads other images (MinAtar's 0/1 planes) as they are. :class:`MinAtarFeatures` is the hand-made
MinAtar network (Young & Tian 2019) as an extractor, for the same-size baseline.

:func:`to_ppo` turns a zoo bundle (safetensors + JSON, or a zoo entry name) into a ready
``PPO`` object with the PPO settings it was trained with; ``ppo.save("policy.zip")`` then gives
SB3's own format (which SB3 reads with cloudpickle: load only zips you made yourself).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from tasks.rl.model import FEATURES, CellEncoder, DenseExtractor, ImagePolicyNet, MinAtarNet, PolicyNet
from tasks.rl.space import PolicyGenotype
from zoo.device import model_device
from zoo.space.genotype import Genotype, genotype_from_json


def image_genotype(genotype: dict[str, Any]) -> bool:
    """Whether a genotype's JSON is a DARTS cell pair (an image encoder) rather than policy towers."""
    return genotype.get("space", "darts") == Genotype.space


class CellFeatures(BaseFeaturesExtractor):
    """The searched image encoder (:class:`tasks.rl.model.CellEncoder`) as SB3's features extractor; the
    observation space is channel-first, as SB3 hands images to its networks."""

    def __init__(self, observation_space: spaces.Box, genotype: dict[str, Any], width: int, layers: int, features: int = FEATURES) -> None:
        super().__init__(observation_space, int(features))
        self.encoder = CellEncoder(Genotype.from_json(genotype), observation_space.shape, int(width), int(layers), int(features))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(observations)


class MinAtarFeatures(BaseFeaturesExtractor):
    """The MinAtar paper's network (:class:`tasks.rl.model.MinAtarNet`) as SB3's features extractor."""

    def __init__(self, observation_space: spaces.Box, channels: int = 16, units: int = FEATURES) -> None:
        super().__init__(observation_space, int(units))
        self.encoder = MinAtarNet(observation_space.shape, int(channels), int(units))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(observations)


def drop_feature_aliases(policy: ActorCriticPolicy) -> None:
    """Keeps a shared features extractor under its one name ``features_extractor``: SB3 also registers it as
    ``pi_features_extractor`` and ``vf_features_extractor``, so its tensors would appear three times in the
    state dict, which safetensors (epoch checkpoints) refuses. The two names stay as plain attributes."""
    if policy.share_features_extractor:
        for name in ("pi_features_extractor", "vf_features_extractor"):
            module = policy._modules.pop(name, None)
            if module is not None:
                object.__setattr__(policy, name, module)


class MinAtarPolicy(ActorCriticPolicy):
    """SB3's ``CnnPolicy`` layout on the MinAtar network (:class:`MinAtarFeatures`, ``channels`` and ``units``):
    the hand-made baseline for image observations."""

    def __init__(self, *args: Any, channels: int = 16, units: int = FEATURES, **kwargs: Any) -> None:
        self.channels, self.units = int(channels), int(units)
        kwargs.setdefault("features_extractor_class", MinAtarFeatures)
        kwargs.setdefault("features_extractor_kwargs", {"channels": self.channels, "units": self.units})
        kwargs.setdefault("net_arch", [])
        super().__init__(*args, **kwargs)
        drop_feature_aliases(self)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "channels": self.channels, "units": self.units}


class ZooPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` whose policy and value networks are the genotype's dense-cell towers, or, for a
    DARTS genotype (image observations), whose shared features extractor is the genotype's cell encoder."""

    def __init__(
        self, *args: Any, genotype: dict[str, Any], width: int = 64, layers: int = 1, features: int = FEATURES, **kwargs: Any
    ) -> None:
        self.genotype = dict(genotype)  # set before the parent constructor, which calls _build_mlp_extractor
        self.width, self.layers, self.features = int(width), int(layers), int(features)
        if image_genotype(self.genotype):  # SB3's CnnPolicy layout: the extractor shared, the heads on its features
            kwargs.setdefault("features_extractor_class", CellFeatures)
            kwargs.setdefault(
                "features_extractor_kwargs",
                {"genotype": self.genotype, "width": self.width, "layers": self.layers, "features": self.features},
            )
            kwargs.setdefault("net_arch", [])
        super().__init__(*args, **kwargs)
        if image_genotype(self.genotype):
            drop_feature_aliases(self)

    def _build_mlp_extractor(self) -> None:
        if image_genotype(self.genotype):
            super()._build_mlp_extractor()  # net_arch=[]: the identity, the heads read the features
            return
        self.mlp_extractor = DenseExtractor(PolicyGenotype.from_json(self.genotype), self.features_dim, self.width, self.layers)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        extra = {"genotype": self.genotype, "width": self.width, "layers": self.layers, "features": self.features}
        return {**super()._get_constructor_parameters(), **extra}


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


def policy_kwargs(genotype: PolicyGenotype | Genotype, width: int, layers: int) -> dict[str, Any]:
    """:class:`ZooPolicy`'s ``policy_kwargs`` for ``genotype`` at ``width`` and ``layers``."""
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
    """The bundle model (:class:`PolicyNet`, :class:`ImagePolicyNet` for image observations) of a
    :class:`ZooPolicy`, weights copied by name (Box actions keep their bounds)."""
    if not isinstance(policy, ZooPolicy):
        raise TypeError(f"policy_net() needs a ZooPolicy, not {type(policy).__name__}")
    low = high = None
    if not discrete:
        low, high = [float(v) for v in policy.action_space.low], [float(v) for v in policy.action_space.high]
    genotype = genotype_from_json(policy.genotype)
    net: PolicyNet
    if isinstance(genotype, Genotype):
        shape = policy.observation_space.shape
        net = ImagePolicyNet(genotype, shape, n_actions, discrete, policy.width, policy.layers, policy.features, 0.0, low, high)
    else:
        net = PolicyNet(genotype, obs_dim, n_actions, discrete, policy.width, policy.layers, 0.0, low, high)
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
    if isinstance(env, str):
        from tasks.rl.data import ensure_registered

        ensure_registered(env)  # MinAtar/... ids are registered by this package, not by gymnasium
    if isinstance(env, str) and trained and int(trained.get("n_envs") or 1) > 1:
        # as many copies as training ran: SB3 makes one of an id, and a rollout of n_steps * 1 would not
        # hold the trained batch_size (SB3 warns about a truncated mini-batch; `learn` would differ from training)
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(env, n_envs=int(trained["n_envs"]))
    kwargs_policy = policy_kwargs(net.genotype, model_args["width"], model_args["layers"])
    if "features" in model_args:
        kwargs_policy["features"] = int(model_args["features"])
    ppo = PPO(
        ZooPolicy,
        env,
        policy_kwargs=kwargs_policy,
        verbose=0,
        device=model_device(net) if device is None else device,
        **{**settings, **kwargs},
    )
    load_policy_weights(ppo.policy, net)
    return ppo
