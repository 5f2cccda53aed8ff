"""The one-shot policy search (``search=darts``, RL-DARTS style): a supernet actor-critic acting in
the environment, its weights trained on PPO's loss and its architecture on PPO's loss of held-out rollouts.

RL-DARTS (Miao et al., AutoML-Conf 2022) replaces a policy's network by a DARTS supernet and
trains it as the acting policy. Here every edge of both towers' cells is a softmax mixture of
the dense ops (:class:`SuperTower`), and :class:`SuperPolicy` is an SB3 ``ActorCriticPolicy``
around it, so SB3 collects its rollouts and computes the advantages (GAE). The one-shot
problem hands the DARTS strategy

* ``train_loader``: each pass (a DARTS epoch) collects ``task.supernet.rollouts`` rollouts, each with
  the current supernet (on-policy), and yields PPO's minibatches of each for ``n_epochs``
  passes; the weights take SGD steps on
  PPO's clipped loss of them;
* ``valid_loader``: the same, as many, from environments on other seeds (the held-out rollouts); the
  architecture parameters step on PPO's loss of those, i.e. on the policy gradient of
  episodes the weights were not fitted to, which is DARTS' bi-level split carried over to RL;
* ``score``: the mean return of deterministic episodes.

Only first-order DARTS applies (``search.order=1``): the loss calls the policy's own methods,
which the second-order functional re-binding does not reach.

For image observations the relaxed part is the shared encoder: :class:`SuperImagePolicy` is SB3's
``CnnPolicy`` layout whose ``features_extractor`` (:class:`SuperCellFeatures`) holds the core DARTS
:class:`zoo.space.supernet.SuperNet` (the classification ops' mixed edges, ``alpha_normal`` and
``alpha_reduce``) in the shape of :class:`tasks.rl.model.CellEncoder`, so the same loaders, loss and
score search convolutional cells inside PPO, and the derived DARTS genotype is what a multi-trial
search of the ``policy`` space would propose for these observations.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from tasks.rl.integrations.sb3 import drop_feature_aliases
from tasks.rl.model import FEATURES, Towers, image_head
from tasks.rl.space import PolicyGenotype, PolicySpace
from zoo.space.genotype import Genotype
from zoo.space.supernet import MixedOp, SuperNet, derive_edges, num_edges


class SuperCell(nn.Module):
    """Every node sums a :class:`MixedOp` from each earlier state; projection + tanh as in :class:`tasks.rl.model.DenseCell`."""

    def __init__(self, steps: int, C: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.steps = steps
        self.edges = nn.ModuleList(MixedOp(C, 1, primitives) for _ in range(num_edges(steps)))
        self.proj = nn.Linear(steps * C, C)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, k = [s0, s1], 0
        for _ in range(self.steps):
            node = sum(self.edges[k + j](h, weights[k + j]) for j, h in enumerate(states))
            k += len(states)
            states.append(node)  # type: ignore[arg-type]
        return torch.tanh(self.proj(torch.cat(states[2:], dim=-1)))


class SuperTower(nn.Module):
    def __init__(self, in_dim: int, C: int, layers: int, steps: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(in_dim, C), nn.Tanh())
        self.cells = nn.ModuleList(SuperCell(steps, C, primitives) for _ in range(layers))
        self.alpha = nn.Parameter(1e-3 * torch.randn(num_edges(steps), len(primitives)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.softmax(self.alpha, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w)
        return s1


class SuperExtractor(Towers):
    def __init__(self, in_dim: int, width: int, layers: int, steps: int, primitives: Sequence[str]) -> None:
        super().__init__(SuperTower(in_dim, width, layers, steps, primitives), SuperTower(in_dim, width, layers, steps, primitives), width)


class SuperPolicy(ActorCriticPolicy):
    """SB3 actor-critic whose towers are supernets; the supernet interface of the one-shot strategies."""

    def __init__(
        self,
        *args: Any,
        steps: int = 2,
        primitives: Sequence[str] = (),
        width: int = 32,
        layers: int = 1,
        zero: str = "dense_none",
        **kwargs: Any,
    ) -> None:
        self.steps, self.primitives, self.width, self.layers, self.zero = int(steps), list(primitives), int(width), int(layers), zero
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = SuperExtractor(self.features_dim, self.width, self.layers, self.steps, self.primitives)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        extra = {"steps": self.steps, "primitives": self.primitives, "width": self.width, "layers": self.layers, "zero": self.zero}
        return {**super()._get_constructor_parameters(), **extra}

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.mlp_extractor.policy_net.alpha, self.mlp_extractor.value_net.alpha]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(a) for a in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return {"policy": F.softmax(self.arch_parameters()[0], -1), "value": F.softmax(self.arch_parameters()[1], -1)}

    def genotype(self) -> PolicyGenotype:
        w = self.arch_weights()
        concat = tuple(range(2, self.steps + 2))
        pi = derive_edges(w["policy"].detach(), self.steps, self.primitives, zero=self.zero)
        vf = derive_edges(w["value"].detach(), self.steps, self.primitives, zero=self.zero)
        return PolicyGenotype(Genotype(pi, concat, vf, concat))


class SuperCellFeatures(BaseFeaturesExtractor):
    """:class:`tasks.rl.model.CellEncoder` relaxed: the stem, ``layers`` normal cells and one reduction cell of
    the DARTS :class:`SuperNet` (every edge a softmax mixture of ``primitives``), pooled to at most
    :data:`tasks.rl.model.GRID` squared, flattened, a ``features``-unit layer with ReLU."""

    def __init__(
        self, observation_space: spaces.Box, width: int, layers: int, steps: int, primitives: Sequence[str], features: int = FEATURES
    ) -> None:
        super().__init__(observation_space, int(features))
        c, h, w = (int(v) for v in observation_space.shape)
        self.supernet = SuperNet(
            num_classes=0,
            init_channels=int(width),
            layers=int(layers) + 1,
            steps=int(steps),
            multiplier=int(steps),
            stem_multiplier=1,
            in_chans=c,
            primitives=primitives,
            num_reductions=1,
        )
        self.pool, self.head = image_head(self.supernet, (c, h, w), features)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.supernet.forward_features(observations)[-1]))


class SuperImagePolicy(ActorCriticPolicy):
    """SB3 actor-critic for image observations whose shared encoder is a DARTS supernet; the supernet
    interface of the one-shot strategies (its genotype: a DARTS normal and reduction cell)."""

    def __init__(
        self,
        *args: Any,
        steps: int = 2,
        primitives: Sequence[str] = (),
        width: int = 16,
        layers: int = 1,
        zero: str = "none",
        features: int = FEATURES,
        **kwargs: Any,
    ) -> None:
        self.steps, self.primitives, self.width, self.layers, self.zero = int(steps), list(primitives), int(width), int(layers), zero
        self.features = int(features)
        kwargs.setdefault("features_extractor_class", SuperCellFeatures)
        kwargs.setdefault(
            "features_extractor_kwargs",
            {"width": self.width, "layers": self.layers, "steps": self.steps, "primitives": self.primitives, "features": self.features},
        )
        kwargs.setdefault("net_arch", [])
        super().__init__(*args, **kwargs)
        drop_feature_aliases(self)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        extra = {"steps": self.steps, "primitives": self.primitives, "width": self.width, "layers": self.layers, "zero": self.zero}
        return {**super()._get_constructor_parameters(), **extra, "features": self.features}

    @property
    def supernet(self) -> SuperNet:
        return self.features_extractor.supernet  # type: ignore[return-value]

    def arch_parameters(self) -> list[nn.Parameter]:
        return self.supernet.arch_parameters()

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(a) for a in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return self.supernet.arch_weights()

    def genotype(self) -> Genotype:
        return self.supernet.genotype()


class RolloutLoader:
    """One pass (a DARTS epoch) collects ``rollouts`` rollouts with ``ppo``'s (shared) policy, one after
    the other, and yields PPO minibatches of each for ``passes`` passes (as PPO's ``n_epochs``)."""

    def __init__(self, ppo: Any, batch_size: int, passes: int, rollouts: int, seed: int) -> None:
        self.ppo, self.batch_size, self.passes, self.rollouts = ppo, int(batch_size), int(passes), int(rollouts)
        # draws each pass's seed; the one-shot checkpoint saves it (EpochCheckpoint.track), so a resumed search replays the same episodes
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return self.rollouts * self.passes * math.ceil(self.ppo.n_envs * self.ppo.n_steps / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        ppo = self.ppo
        ppo.set_random_seed(int(torch.randint(2**31 - 1, (1,), generator=self.generator)))  # envs, sampling, minibatch order
        ppo._last_obs = None  # _setup_learn resets the envs with those seeds
        _, callback = ppo._setup_learn(10**12, None, reset_num_timesteps=True)
        for _ in range(self.rollouts):
            was = ppo.policy.training
            with torch.no_grad():
                ppo.collect_rollouts(ppo.env, callback, ppo.rollout_buffer, n_rollout_steps=ppo.n_steps)
            ppo.policy.set_training_mode(was)
            for _ in range(self.passes):
                yield from ppo.rollout_buffer.get(self.batch_size)


def supernet_kwargs(space: PolicySpace, width: int, layers: int) -> dict[str, Any]:
    return {"steps": space.steps, "primitives": list(space.primitives), "width": int(width), "layers": int(layers), "zero": space.zero}
