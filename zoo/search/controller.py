"""The autoregressive controller shared by the policy-gradient strategies.

:class:`AutoregressiveController` is the recurrent controller of Zoph & Le, "Neural
Architecture Search with Reinforcement Learning" (ICLR 2017): an LSTM that emits the
space's decisions one at a time, each decision's embedding being the next step's input,
with one softmax head per decision. Logits may be squashed with ``c * tanh(l / T)``
(Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018)
so the policy does not collapse early.

:class:`ControllerStrategy` is the ask/tell wrapper both ``reinforce`` and ``ppo``
build on: sampling (with the strategy's numpy RNG, so asks are reproducible), an
exponential moving-average reward baseline, advantage scaling, and an exact JSON
``state_dict`` holding the controller weights, the optimizer state, the baseline and
the RNG states of numpy and torch.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.search.base import Strategy, check
from zoo.space.base import SearchSpace


# ---- exact JSON for tensors, modules and optimizers
def tensor_to_json(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as plain JSON: dtype, shape and its little-endian bytes in base64.

    Bit-exact, and unlike a list of numbers cheap to write after every tell (the state
    file is rewritten that often; tens of thousands of floats as text take a large
    fraction of a second to encode).
    """
    a = t.detach().cpu().contiguous().numpy()
    return {
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "base64": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii"),
    }


def tensor_from_json(d: dict[str, Any]) -> torch.Tensor:
    dtype = np.dtype(d["dtype"]).newbyteorder("<")
    a = np.frombuffer(base64.b64decode(d["base64"]), dtype=dtype).astype(dtype.newbyteorder("="))
    return torch.from_numpy(a.reshape(d["shape"]).copy())


def module_to_json(module: nn.Module) -> dict[str, Any]:
    return {k: tensor_to_json(v) for k, v in module.state_dict().items()}


def module_from_json(module: nn.Module, state: dict[str, Any]) -> None:
    module.load_state_dict({k: tensor_from_json(v) for k, v in state.items()})


def optimizer_to_json(opt: torch.optim.Optimizer) -> dict[str, Any]:
    sd = opt.state_dict()
    state = {str(k): {n: tensor_to_json(v) if torch.is_tensor(v) else v for n, v in s.items()} for k, s in sd["state"].items()}
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return {"state": state, "param_groups": groups}


def optimizer_from_json(opt: torch.optim.Optimizer, data: dict[str, Any]) -> None:
    state = {int(k): {n: tensor_from_json(v) if isinstance(v, dict) else v for n, v in s.items()} for k, s in data["state"].items()}
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in data["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def generator_to_json(g: torch.Generator) -> dict[str, Any]:
    return tensor_to_json(g.get_state())


def generator_from_json(g: torch.Generator, state: dict[str, Any]) -> None:
    g.set_state(tensor_from_json(state))


@contextmanager
def one_thread() -> Iterator[None]:
    """Runs tiny torch ops on one thread: at these sizes extra threads only wait on each
    other (on a busy machine a 64-wide LSTM step goes from 0.2 ms to 30 ms with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- the controller
class AutoregressiveController(nn.Module):
    """LSTM policy over a vector of categorical decisions (Zoph & Le, ICLR 2017).

    Step ``t`` reads the embedding of decision ``t - 1`` (a learned start vector at
    ``t = 0``) and outputs logits over the ``cardinalities[t]`` options of decision ``t``.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        hidden: int = 64,
        tanh_constant: float = 0.0,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.cardinalities = [int(c) for c in cardinalities]
        self.hidden = hidden
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.offsets = np.concatenate([[0], np.cumsum(self.cardinalities)]).astype(np.int64)
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.embedding = nn.Embedding(int(self.offsets[-1]), hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        # one head for all decisions: logits of decision t are the slice offsets[t]:offsets[t+1]
        self.head = nn.Linear(hidden, int(self.offsets[-1]))
        self._init(generator)
        self._head_index = [slice(int(self.offsets[t]), int(self.offsets[t + 1])) for t in range(len(self.cardinalities))]

    def _init(self, generator: torch.Generator | None) -> None:
        bound = 0.1
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
            # start near the uniform policy
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def _logits(self, h: torch.Tensor, t: int) -> torch.Tensor:
        w = self.head.weight[self._head_index[t]]
        b = self.head.bias[self._head_index[t]]
        logits = (h @ w.T + b) / self.temperature
        if self.tanh_constant > 0:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    @torch.no_grad()
    def sample(self, rng: np.random.Generator, m: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``m`` decision vectors ``(m, T)`` drawn from the policy with ``rng``, and their
        log-probabilities ``(m,)``."""
        x = self.start.expand(m, 1, -1)
        state = None
        choices = np.zeros((m, len(self.cardinalities)), dtype=np.int64)
        logp = np.zeros(m)
        rows = np.arange(m)
        for t, card in enumerate(self.cardinalities):
            out, state = self.lstm(x, state)
            p = torch.softmax(self._logits(out[:, 0], t).double(), dim=-1).numpy()
            c = np.minimum((np.cumsum(p, axis=1) < rng.random(m)[:, None]).sum(axis=1), card - 1)
            logp += np.log(p[rows, c])
            choices[:, t] = c
            x = self.embedding.weight[torch.as_tensor(self.offsets[t] + c)].unsqueeze(1)
        return choices, logp

    def log_prob(self, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities ``(B,)`` of a batch of decision vectors ``(B, T)`` and the policy's
        entropy ``(B,)`` summed along each vector's own trajectory."""
        batch, steps = choices.shape
        ids = choices + torch.as_tensor(self.offsets[:-1]).unsqueeze(0)
        inputs = torch.cat([self.start.expand(batch, 1, -1), self.embedding(ids[:, :-1])], dim=1)
        out, _ = self.lstm(inputs)
        logp = torch.zeros(batch)
        entropy = torch.zeros(batch)
        for t in range(steps):
            lp = torch.log_softmax(self._logits(out[:, t], t), dim=-1)
            logp = logp + lp.gather(1, choices[:, t : t + 1]).squeeze(1)
            entropy = entropy - (lp.exp() * lp).sum(-1)
        return logp, entropy


class ControllerStrategy(Strategy):
    """Ask/tell around an :class:`AutoregressiveController`; subclasses define the update.

    Rewards are turned into advantages ``(R - b) / s`` where ``b`` is an exponential
    moving average of past rewards (Zoph & Le 2017) and ``s`` a moving average of the
    advantages' magnitude, so ``lr`` and ``entropy_weight`` mean the same whatever the
    reward's units. With ``dedup`` the controller's samples that were already asked are
    redrawn (up to ``max_tries`` times, then mutated) so no query is spent twice.
    """

    def __init__(
        self,
        space: SearchSpace,
        budget: int = 100,
        seed: int = 0,
        objectives: Sequence[str] = ("accuracy",),
        lr: float = 0.01,
        hidden: int = 64,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        tanh_constant: float = 0.0,
        temperature: float = 1.0,
        grad_clip: float = 5.0,
        dedup: bool = True,
        max_tries: int = 50,
    ) -> None:
        check(isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0, "lr", lr, "a number > 0")
        check(isinstance(hidden, int) and not isinstance(hidden, bool) and hidden >= 1, "hidden", hidden, "an integer >= 1")
        check(isinstance(baseline_decay, (int, float)) and 0 <= baseline_decay < 1, "baseline_decay", baseline_decay, "a number in [0, 1)")
        check(isinstance(entropy_weight, (int, float)) and entropy_weight >= 0, "entropy_weight", entropy_weight, "a number >= 0")
        check(
            isinstance(tanh_constant, (int, float)) and tanh_constant >= 0,
            "tanh_constant",
            tanh_constant,
            "a number >= 0 (0 = no squashing)",
        )
        check(isinstance(temperature, (int, float)) and temperature > 0, "temperature", temperature, "a number > 0")
        check(isinstance(grad_clip, (int, float)) and grad_clip >= 0, "grad_clip", grad_clip, "a number >= 0 (0 = no clipping)")
        check(isinstance(dedup, bool), "dedup", dedup, "true or false")
        check(isinstance(max_tries, int) and not isinstance(max_tries, bool) and max_tries >= 1, "max_tries", max_tries, "an integer >= 1")
        super().__init__(space, budget=budget, seed=seed, objectives=objectives)
        self.lr = float(lr)
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.grad_clip = float(grad_clip)
        self.dedup = dedup
        self.max_tries = max_tries
        self.torch_rng = torch.Generator().manual_seed(seed)
        self.controller = AutoregressiveController(space.cardinalities(), hidden, float(tanh_constant), float(temperature), self.torch_rng)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.lr)
        self.baseline: float | None = None
        self.adv_scale: float | None = None
        self._seen: set[tuple[int, ...]] = set()
        self._behaviour_logp: dict[tuple[int, ...], float] = {}

    # ---- asking
    def ask(self, n: int = 1) -> list[Any]:
        with one_thread():
            return super().ask(n)

    def tell(self, genotype: Any, result: dict[str, Any]) -> None:
        with one_thread():
            super().tell(genotype, result)

    def _propose(self) -> Any:
        tries = 0
        while True:
            m = min(8, self.max_tries - tries) if self.dedup else 1
            xs, logps = self.controller.sample(self.rng, m)
            tries += m
            fresh = [i for i in range(m) if tuple(xs[i]) not in self._seen]
            if not self.dedup or fresh:
                i = fresh[0] if fresh else 0
                x, logp = [int(v) for v in xs[i]], float(logps[i])
                break
            if tries >= self.max_tries:
                # the policy keeps proposing known cells: spend the query on a nearby new one
                g = self.space.decode([int(v) for v in xs[0]])
                x = self.space.encode(g)
                while tuple(x) in self._seen and len(self._seen) < self.space.size():
                    g = self.space.mutate(g, self.rng)
                    x = self.space.encode(g)
                with torch.no_grad():
                    logp = float(self.controller.log_prob(torch.tensor([x]))[0][0])
                break
        self._seen.add(tuple(x))
        self._behaviour_logp[tuple(x)] = logp
        return self.space.decode(x)

    # ---- telling
    def _observe(self, genotype: Any, result: dict[str, Any]) -> None:
        x = tuple(self.space.encode(genotype))
        self._seen.add(x)
        logp = self._behaviour_logp.pop(x, None)
        reward = float(result["reward"])
        if self.baseline is None:
            self.baseline = reward
        adv = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        if self.adv_scale is None:
            if adv != 0:
                self.adv_scale = abs(adv)
        else:
            self.adv_scale = self.baseline_decay * self.adv_scale + (1 - self.baseline_decay) * abs(adv)
        scaled = adv / self.adv_scale if self.adv_scale else 0.0
        self._learn(list(x), scaled, logp)

    def _learn(self, x: list[int], advantage: float, behaviour_logp: float | None) -> None:
        raise NotImplementedError

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip)
        self.optimizer.step()

    # ---- state
    def _extra_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "controller": module_to_json(self.controller),
            "optimizer": optimizer_to_json(self.optimizer),
            "torch_rng": generator_to_json(self.torch_rng),
            "baseline": self.baseline,
            "adv_scale": self.adv_scale,
            "seen": sorted(list(x) for x in self._seen),
            "behaviour_logp": [[list(x), lp] for x, lp in self._behaviour_logp.items()],
            **self._learner_state(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        module_from_json(self.controller, state["controller"])
        optimizer_from_json(self.optimizer, state["optimizer"])
        generator_from_json(self.torch_rng, state["torch_rng"])
        self.baseline = state["baseline"]
        self.adv_scale = state["adv_scale"]
        self._seen = {tuple(x) for x in state["seen"]}
        self._behaviour_logp = {tuple(x): lp for x, lp in state["behaviour_logp"]}
        self._load_learner_state(state)

    def _learner_state(self) -> dict[str, Any]:
        return {}

    def _load_learner_state(self, state: dict[str, Any]) -> None:
        pass
