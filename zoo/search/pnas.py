"""Progressive NAS (Liu et al., "Progressive Neural Architecture Search", ECCV 2018).

Architectures grow one block at a time: a block is one of the space's ``groups()``
(a node of a DARTS cell, an edge of a NAS-Bench-201 cell). Level 0 fills block 0 in
every possible way, the other decisions held at a fixed ``padding`` option; level ``b``
expands each of the ``beam`` candidates chosen at level ``b - 1`` with every setting of
block ``b``, ranks the children with a learned surrogate and evaluates the ``beam``
best. The surrogate is, as in the paper's MLP variant, an ensemble of small MLPs on the
architectures' one-hot encoding, refitted on everything told so far; its members differ
by initialisation and bootstrap resampling, and their spread is the uncertainty.

Once every block is filled the remaining budget goes to surrogate-ranked local moves:
each ask scores all one-decision neighbours of the best ``n_parents`` cells, a few
two-decision mutations of them and ``n_random`` uniform samples by ``mean + kappa * std``
of the ensemble and proposes the best cell not asked before.

Everything the strategy decides is a function of the told history, its numpy RNG and
the seed (each surrogate fit draws from a numpy generator seeded with the seed and the
number of observations), so ``state_dict`` needs only that plus the level, beam and queue.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.search.base import STRATEGIES, Strategy, check
from zoo.search.pareto import check_objectives
from zoo.space.base import SearchSpace


class MLPEnsemble:
    """``members`` two-hidden-layer ReLU MLPs, trained together as one batched model.

    Full-batch Adam (Kingma & Ba, ICLR 2015) on the squared error of standardised
    targets, with L2 weight decay; each member sees its own bootstrap resample of the
    data and its own initialisation (Lakshminarayanan et al., "Simple and Scalable
    Predictive Uncertainty Estimation using Deep Ensembles", NeurIPS 2017). Written in
    numpy with explicit gradients: at these sizes (tens of inputs, a hundred points) it
    is several times faster than an autograd framework, which keeps an ask cheap.
    """

    def __init__(self, members: int, hidden: int, steps: int, lr: float, weight_decay: float) -> None:
        self.members = members
        self.hidden = hidden
        self.steps = steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.mean = 0.0
        self.std = 1.0
        self.theta = np.zeros(0, dtype=np.float32)
        self.layers: list[np.ndarray] = []

    def _views(self, flat: np.ndarray, d: int) -> list[np.ndarray]:
        e, h = self.members, self.hidden
        shapes = [(e, d, h), (e, 1, h), (e, h, h), (e, 1, h), (e, h, 1), (e, 1, 1)]
        out, k = [], 0
        for shape in shapes:
            n = int(np.prod(shape))
            out.append(flat[k : k + n].reshape(shape))
            k += n
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> MLPEnsemble:
        e, h = self.members, self.hidden
        n, d = x.shape
        self.mean = float(y.mean())
        self.std = float(y.std()) or 1.0
        X = x.astype(np.float32)
        Y = np.broadcast_to(((y - self.mean) / self.std).astype(np.float32), (e, n))
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(e)]).astype(np.float32)
        counts /= counts.sum()
        size = e * (d * h + h + h * h + h + h + 1)
        self.theta = np.zeros(size, dtype=np.float32)
        self.layers = self._views(self.theta, d)
        for w, fan_in in zip(self.layers, (d, d, h, h, h, h)):
            w[...] = rng.uniform(-1, 1, w.shape) / np.sqrt(fan_in)
        grad = np.zeros(size, dtype=np.float32)
        gW1, gb1, gW2, gb2, gW3, gb3 = self._views(grad, d)
        W1, b1, W2, b2, W3, b3 = self.layers
        m, v = np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        Xt = X.T
        for step in range(1, self.steps + 1):
            z1 = np.matmul(X, W1) + b1
            a1 = np.maximum(z1, 0)
            z2 = np.matmul(a1, W2) + b2
            a2 = np.maximum(z2, 0)
            out = (np.matmul(a2, W3) + b3)[..., 0]
            dout = (2 * counts * (out - Y))[..., None]  # (e, n, 1)
            np.matmul(a2.transpose(0, 2, 1), dout, out=gW3)
            gb3[...] = dout.sum(1, keepdims=True)
            dz2 = np.matmul(dout, W3.transpose(0, 2, 1)) * (z2 > 0)
            np.matmul(a1.transpose(0, 2, 1), dz2, out=gW2)
            gb2[...] = dz2.sum(1, keepdims=True)
            dz1 = np.matmul(dz2, W2.transpose(0, 2, 1)) * (z1 > 0)
            np.matmul(Xt, dz1, out=gW1)
            gb1[...] = dz1.sum(1, keepdims=True)
            if self.weight_decay:
                grad += self.weight_decay * self.theta
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            self.theta -= self.lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
        return self

    def _forward(self, X: np.ndarray) -> np.ndarray:
        W1, b1, W2, b2, W3, b3 = self.layers
        a1 = np.maximum(np.matmul(X, W1) + b1, 0)
        a2 = np.maximum(np.matmul(a1, W2) + b2, 0)
        return (np.matmul(a2, W3) + b3)[..., 0]  # (members, n)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over members, in the targets' units."""
        p = self._forward(x.astype(np.float32)).astype(np.float64) * self.std + self.mean
        return p.mean(0), p.std(0)


@STRATEGIES.register("pnas")
class ProgressiveNAS(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        budget: int = 100,
        seed: int = 0,
        objectives: Sequence[str] = ("accuracy",),
        beam: int = 5,
        padding: int = 1,
        ensemble: int = 5,
        hidden: int = 32,
        fit_steps: int = 60,
        surrogate_lr: float = 0.03,
        weight_decay: float = 1e-4,
        kappa: float = 0.5,
        n_parents: int = 10,
        n_random: int = 100,
        max_children: int = 5000,
    ) -> None:
        def integer(v: Any, low: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        groups = space.groups()
        check(
            integer(beam, 1) and beam * len(groups) <= budget,
            "beam",
            beam,
            f"an integer >= 1 with beam x {len(groups)} blocks of space {space.name!r} <= budget={budget}",
        )
        check(integer(padding, 0), "padding", padding, "an option index >= 0 (clipped to each decision's options)")
        check(integer(ensemble, 2), "ensemble", ensemble, "an integer >= 2 (members of the surrogate ensemble)")
        check(integer(hidden, 1), "hidden", hidden, "an integer >= 1")
        check(integer(fit_steps, 1), "fit_steps", fit_steps, "an integer >= 1")
        check(number(surrogate_lr) and surrogate_lr > 0, "surrogate_lr", surrogate_lr, "a number > 0")
        check(number(weight_decay) and weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0")
        check(number(kappa) and kappa >= 0, "kappa", kappa, "a number >= 0")
        check(integer(n_parents, 1), "n_parents", n_parents, "an integer >= 1")
        check(integer(n_random, 0), "n_random", n_random, "an integer >= 0")
        check(integer(max_children, 1), "max_children", max_children, "an integer >= 1")
        super().__init__(space, budget=budget, seed=seed, objectives=check_objectives(objectives, "pnas", multi_ok=False))
        self.beam_size = beam
        self.padding = padding
        self.ensemble = ensemble
        self.hidden = hidden
        self.fit_steps = fit_steps
        self.surrogate_lr = float(surrogate_lr)
        self.weight_decay = float(weight_decay)
        self.kappa = float(kappa)
        self.n_parents = n_parents
        self.n_random = n_random
        self.max_children = max_children
        self.groups = groups
        self.card = np.asarray(space.cardinalities(), dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.card)[:-1]]).astype(np.int64)
        self.level = -1  # the block being filled; len(groups) once the local phase runs
        self.beam: list[list[int]] = []
        self.queue: list[list[int]] = []
        self._asked: set[tuple[int, ...]] = set()
        self._fit: tuple[int, MLPEnsemble] | None = None

    # ---- encodings
    def features(self, xs: np.ndarray) -> np.ndarray:
        out = np.zeros((len(xs), int(self.card.sum())), dtype=np.float32)
        out[np.arange(len(xs))[:, None], self.offsets[None, :] + xs] = 1.0
        return out

    def _told(self) -> tuple[np.ndarray, np.ndarray]:
        xs = np.asarray([self.space.encode(g) for g, _ in self.history], dtype=np.int64)
        ys = np.asarray([float(r["reward"]) for _, r in self.history])
        return xs, ys

    def surrogate(self) -> MLPEnsemble | None:
        """The ensemble fitted on every told result (``None`` before two results)."""
        if self.n_told < 2:
            return None
        if self._fit is None or self._fit[0] != self.n_told:
            xs, ys = self._told()
            rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, self.n_told])
            model = MLPEnsemble(self.ensemble, self.hidden, self.fit_steps, self.surrogate_lr, self.weight_decay)
            self._fit = (self.n_told, model.fit(self.features(xs), ys, rng))
        return self._fit[1]

    def _rank(self, cands: np.ndarray, k: int) -> list[list[int]]:
        """The ``k`` best of ``cands`` by the surrogate's upper bound (random order without data)."""
        model = self.surrogate()
        if model is None:
            order = self.rng.permutation(len(cands))
        else:
            mean, std = model.predict(self.features(cands))
            order = np.argsort(-(mean + self.kappa * std), kind="stable")
        return [[int(v) for v in cands[i]] for i in order[:k]]

    def _fresh(self, cands: np.ndarray) -> np.ndarray:
        if len(cands) == 0:
            return cands
        cands = np.unique(cands, axis=0)
        keep = [i for i, x in enumerate(cands) if tuple(int(v) for v in x) not in self._asked]
        return cands[keep]

    # ---- progressive phase
    def _children(self, level: int) -> np.ndarray:
        group = self.groups[level]
        parents = self.beam if level > 0 else [[min(self.padding, int(c) - 1) for c in self.card]]
        settings = list(itertools.product(*[range(int(self.card[k])) for k in group]))
        kids = np.repeat(np.asarray(parents, dtype=np.int64), len(settings), axis=0)
        kids[:, group] = np.tile(np.asarray(settings, dtype=np.int64), (len(parents), 1))
        kids = self._fresh(kids)
        if len(kids) > self.max_children:
            kids = kids[np.sort(self.rng.choice(len(kids), self.max_children, replace=False))]
        return kids

    def _next_level(self) -> None:
        while not self.queue and self.level < len(self.groups) - 1:
            self.level += 1
            kids = self._children(self.level)
            if len(kids):
                self.queue = self._rank(kids, self.beam_size)
                self.beam = [list(x) for x in self.queue]
        if not self.queue:
            self.level = len(self.groups)

    # ---- local phase
    def _local_candidates(self) -> np.ndarray:
        xs, ys = self._told()
        parents = xs[np.argsort(-ys, kind="stable")[: self.n_parents]]
        cands = []
        for p in parents:
            for k, c in enumerate(self.card):
                for v in range(int(c)):
                    if v != p[k]:
                        y = p.copy()
                        y[k] = v
                        cands.append(y)
            for _ in range(len(self.card)):  # two-decision moves
                y = p.copy()
                for k in self.rng.choice(len(self.card), size=min(2, len(self.card)), replace=False):
                    y[k] = (y[k] + self.rng.integers(1, max(int(self.card[k]), 2))) % self.card[k]
                cands.append(y)
        if self.n_random:
            cands.extend(np.stack([self.rng.integers(0, self.card) for _ in range(self.n_random)]))
        return self._fresh(np.asarray(cands, dtype=np.int64).reshape(-1, len(self.card)))

    def _propose_local(self) -> list[int]:
        cands = self._local_candidates() if self.n_told else np.zeros((0, len(self.card)), dtype=np.int64)
        if len(cands):
            return self._rank(cands, 1)[0]
        for _ in range(1000):  # nothing new near the best cells: a new random cell
            x = [int(v) for v in self.rng.integers(0, self.card)]
            if tuple(x) not in self._asked:
                return x
        return x

    # ---- Strategy API
    def _propose(self) -> Any:
        if not self.queue and self.level < len(self.groups):
            self._next_level()
        x = self.queue.pop(0) if self.queue else self._propose_local()
        self._asked.add(tuple(x))
        return self.space.decode(x)

    def _observe(self, genotype: Any, result: dict[str, Any]) -> None:
        self._asked.add(tuple(self.space.encode(genotype)))

    def _extra_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,  # the surrogate fits are seeded from it
            "level": self.level,
            "beam": self.beam,
            "queue": self.queue,
            "asked": sorted(list(x) for x in self._asked),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        self.level = int(state["level"])
        self.beam = [list(x) for x in state["beam"]]
        self.queue = [list(x) for x in state["queue"]]
        self._asked = {tuple(x) for x in state["asked"]}
        self._fit = None
