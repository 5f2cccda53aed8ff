"""Actor-critic networks from a :class:`PolicyGenotype`: two towers of dense cells, an action head
and a value head, laid out as stable-baselines3's ``ActorCriticPolicy`` lays out its modules; for image
observations, a convolutional encoder of DARTS cells shared by the two heads.

:class:`PolicyNet` (the bundle's model) takes a flat float observation (a Box observation
flattened, a Discrete one one-hot, as SB3's preprocessing gives them) and returns the action
logits (Discrete actions) or the Gaussian mean (Box actions) and the state value. Its
parameter names (``mlp_extractor.*``, ``action_net.*``, ``value_net.*``, ``log_std``) are
those of the SB3 policy built with the same genotype
(:class:`tasks.rl.integrations.sb3.ZooPolicy`), so weights move between the two by name.

:class:`ImagePolicyNet` does the same for image observations (channel-first floats, scaled as SB3
scales them): :class:`CellEncoder` (a one-convolution stem, the searched DARTS normal and reduction
cells of the classification ops, a fully connected layer) is SB3's shared ``features_extractor`` and
the heads read its features directly (``net_arch=[]``, as SB3's ``CnnPolicy``). :class:`MinAtarNet` is
the hand-made network of the MinAtar paper (Young & Tian 2019, arXiv:1903.03176): one 3x3
convolution of 16 channels and a 128-unit layer, both with ReLU, widths scaled for the same-size baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tasks.rl.space import PolicyGenotype
from zoo.models import MODEL_BUILDERS, resolve_genotype
from zoo.space.genotype import Genotype
from zoo.space.network import CellNetwork
from zoo.space.ops import OPS

FEATURES = 128  # units of the image encoder's last layer: the MinAtar paper's hidden layer
GRID = 8  # the encoder's last map is average-pooled to at most GRID x GRID before its fully connected layer


class DenseCell(nn.Module):
    """A discrete DARTS cell on (N, C) tensors: node i sums two ops on earlier states; the
    concatenated nodes are projected back to C and squashed with tanh (keeps a deep stack bounded)."""

    def __init__(self, edges: Sequence[tuple[str, int]], concat: Sequence[int], C: int) -> None:
        super().__init__()
        self.edges = [(str(op), int(src)) for op, src in edges]
        self.concat = [int(c) for c in concat]
        self.ops = nn.ModuleList(OPS.get(op)(C, 1, True) for op, _ in self.edges)
        self.proj = nn.Linear(len(self.concat) * C, C)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [s0, s1]
        for i in range(len(self.edges) // 2):
            (_, a), (_, b) = self.edges[2 * i], self.edges[2 * i + 1]
            states.append(self.ops[2 * i](states[a]) + self.ops[2 * i + 1](states[b]))
        return torch.tanh(self.proj(torch.cat([states[c] for c in self.concat], dim=-1)))


class DenseTower(nn.Module):
    """Observation -> Linear + tanh stem -> ``layers`` cells (each reads the two states before it) -> (N, C)."""

    def __init__(self, edges: Sequence[tuple[str, int]], concat: Sequence[int], in_dim: int, C: int, layers: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(in_dim, C), nn.Tanh())
        self.cells = nn.ModuleList(DenseCell(edges, concat, C) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1


class Towers(nn.Module):
    """A policy and a value tower side by side, with SB3's mlp_extractor interface (``latent_dim_pi``, ``forward_actor`` ...)."""

    def __init__(self, policy_net: nn.Module, value_net: nn.Module, width: int) -> None:
        super().__init__()
        self.policy_net, self.value_net = policy_net, value_net
        self.latent_dim_pi = self.latent_dim_vf = width

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.policy_net(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_net(features)


class DenseExtractor(Towers):
    """The genotype's policy and value towers."""

    def __init__(self, genotype: PolicyGenotype, in_dim: int, width: int, layers: int) -> None:
        super().__init__(DenseTower(*genotype.policy, in_dim, width, layers), DenseTower(*genotype.value, in_dim, width, layers), width)


class PolicyNet(nn.Module):
    """obs (N, obs_dim) -> (action logits or mean (N, n_actions), value (N,)).

    ``discrete``: a categorical policy over ``n_actions``; else a diagonal Gaussian with a
    state-independent ``log_std`` per action dimension (as SB3's for Box actions).
    """

    def __init__(
        self,
        genotype: PolicyGenotype,
        obs_dim: int,
        n_actions: int,
        discrete: bool,
        width: int = 64,
        layers: int = 1,
        log_std_init: float = 0.0,
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.obs_dim, self.n_actions, self.discrete = obs_dim, n_actions, discrete
        self.action_bounds = (
            (torch.tensor(action_low, dtype=torch.float32), torch.tensor(action_high, dtype=torch.float32))
            if action_low is not None and action_high is not None
            else None
        )
        latent = self._build_body(genotype, obs_dim, width, layers)
        self.action_net = nn.Linear(latent, n_actions)
        self.value_net = nn.Linear(latent, 1)
        if not discrete:
            self.log_std = nn.Parameter(torch.full((n_actions,), float(log_std_init)))

    def _build_body(self, genotype: Any, obs_dim: int, width: int, layers: int) -> int:
        """Builds what reads the observation (SB3's module names); returns the heads' input size."""
        self.mlp_extractor = DenseExtractor(genotype, obs_dim, width, layers)
        return width

    def latent(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy head's and the value head's inputs."""
        return self.mlp_extractor(obs.flatten(1).float())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pi, vf = self.latent(obs)
        return self.action_net(pi), self.value_net(vf)[:, 0]

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the most likely one (Discrete) or the mean clipped to the action bounds (Box), as SB3's ``predict``."""
        out, _ = self(obs)
        if self.discrete:
            return out.argmax(-1)
        if self.action_bounds is None:
            return out
        return torch.clamp(out, *(b.to(out.device) for b in self.action_bounds))  # plain tensors: they stay on the CPU


def image_head(body: nn.Module, obs_shape: tuple[int, int, int], features: int) -> tuple[nn.Module, nn.Module]:
    """(pool, head) after a cell ``body`` (``forward_features(x)[-1]``: its last map): the map average-pooled to at
    most ``GRID`` x ``GRID``, flattened, then a ReLU layer of ``features`` units. One probe in eval mode gives the
    map's shape and leaves the batch-norm statistics as they are."""
    body.eval()
    with torch.no_grad():
        out = body.forward_features(torch.zeros(1, *obs_shape))[-1]  # type: ignore[operator]
    body.train()
    out_c, out_h, out_w = out.shape[1:]
    grid = (min(out_h, GRID), min(out_w, GRID))
    pool: nn.Module = nn.AdaptiveAvgPool2d(grid) if grid != (out_h, out_w) else nn.Identity()
    return pool, nn.Sequential(nn.Flatten(), nn.Linear(out_c * grid[0] * grid[1], int(features)), nn.ReLU())


class CellEncoder(nn.Module):
    """(N, C, H, W) -> (N, features): the stem (one 3x3 convolution to ``width`` channels + BN), ``layers`` normal
    cells and one reduction cell of ``genotype`` at half depth (:class:`zoo.space.network.CellNetwork` with one
    reduction: 10x10 MinAtar planes end at 5x5, channels doubled), the last map average-pooled to at most
    :data:`GRID` squared, flattened, and a ``features``-unit layer with ReLU (the MinAtar network's 128 units)."""

    def __init__(self, genotype: Genotype, obs_shape: Sequence[int], width: int, layers: int, features: int = FEATURES) -> None:
        super().__init__()
        c, h, w = (int(v) for v in obs_shape)
        self.body = CellNetwork(genotype, 0, width, layers + 1, in_chans=c, stem="cifar", stem_multiplier=1, num_reductions=1)
        self.pool, self.head = image_head(self.body, (c, h, w), features)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.body.forward_features(obs)[-1]))


class MinAtarNet(nn.Module):
    """The MinAtar paper's network (Young & Tian 2019, arXiv:1903.03176): a 3x3 convolution of ``channels``
    (16 there) with stride 1 and no padding, ReLU, then a fully connected layer of ``units`` (128 there), ReLU."""

    def __init__(self, obs_shape: Sequence[int], channels: int = 16, units: int = FEATURES) -> None:
        super().__init__()
        c, h, w = (int(v) for v in obs_shape)
        self.conv = nn.Sequential(nn.Conv2d(c, int(channels), 3, stride=1), nn.ReLU(), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(int(channels) * (h - 2) * (w - 2), int(units)), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(obs))


class ImagePolicyNet(PolicyNet):
    """:class:`PolicyNet` for image observations: obs (N, C, H, W) -> :class:`CellEncoder` -> both heads.

    Its parameter names (``features_extractor.encoder.*``, ``action_net.*``, ``value_net.*``) are those of
    the SB3 policy of the same genotype (:class:`tasks.rl.integrations.sb3.CellFeatures`)."""

    def __init__(
        self,
        genotype: Genotype,
        obs_shape: Sequence[int],
        n_actions: int,
        discrete: bool,
        width: int = 16,
        layers: int = 1,
        features: int = FEATURES,
        log_std_init: float = 0.0,
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
    ) -> None:
        self.obs_shape, self.features = tuple(int(v) for v in obs_shape), int(features)  # read by _build_body
        super().__init__(genotype, math.prod(self.obs_shape), n_actions, discrete, width, layers, log_std_init, action_low, action_high)

    def _build_body(self, genotype: Any, obs_dim: int, width: int, layers: int) -> int:
        self.features_extractor = nn.ModuleDict({"encoder": CellEncoder(genotype, self.obs_shape, width, layers, self.features)})
        return self.features

    def latent(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features_extractor["encoder"](obs.reshape(-1, *self.obs_shape).float())
        return features, features


@MODEL_BUILDERS.register("rl")
def create_policy(
    arch: Any,
    obs_dim: int = 4,
    n_actions: int = 2,
    discrete: bool = True,
    width: int = 64,
    layers: int = 1,
    log_std_init: float = 0.0,
    action_low: Sequence[float] | None = None,
    action_high: Sequence[float] | None = None,
    obs_shape: Sequence[int] | None = None,
    features: int = FEATURES,
    **_: Any,
) -> PolicyNet:
    """``zoo.create_model`` for policies (other keys of a bundle's model arguments are ignored): a policy
    genotype's towers, or a DARTS genotype's image encoder (``obs_shape``: channels, height, width)."""
    genotype = resolve_genotype(arch)
    if isinstance(genotype, Genotype):
        if obs_shape is None:
            raise ValueError("task=rl builds a DARTS genotype as an image policy, which needs obs_shape (channels, height, width)")
        return ImagePolicyNet(
            genotype,
            obs_shape,
            int(n_actions),
            bool(discrete),
            int(width),
            int(layers),
            int(features),
            float(log_std_init),
            action_low,
            action_high,
        )
    if not isinstance(genotype, PolicyGenotype):
        raise ValueError(f"task=rl builds policy genotypes (space=policy), not {type(genotype).__name__}")
    return PolicyNet(
        genotype, int(obs_dim), int(n_actions), bool(discrete), int(width), int(layers), float(log_std_init), action_low, action_high
    )
