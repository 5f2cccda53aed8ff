"""The search-space API that every strategy works against.

A space describes its architectures as a fixed-length vector of categorical
decisions (``cardinalities()[k]`` options for decision ``k``). Strategies sample,
mutate, cross over, embed (one-hot) and generate (controllers emit one decision at a
time) through this API only; they never see ops, cells or tasks. ``decode`` turns a
decision vector into the space's genotype and ``encode`` back; both are exact inverses
on the space's valid genotypes.

Decisions come in ``groups()`` (for DARTS: one node of one cell; for NAS-Bench-201:
one edge), which progressive strategies such as PNAS grow one at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.registry import Registry


class SearchSpace(ABC):
    """A discrete architecture space of fixed-length categorical decision vectors."""

    name: str = "abstract"

    @abstractmethod
    def cardinalities(self) -> list[int]:
        """Number of options of each decision."""

    @abstractmethod
    def decode(self, choices: Sequence[int]) -> Any:
        """Decision vector -> genotype."""

    @abstractmethod
    def encode(self, genotype: Any) -> list[int]:
        """Genotype -> decision vector (inverse of ``decode``)."""

    @abstractmethod
    def genotype_from_json(self, data: dict[str, Any]) -> Any: ...

    def decision_names(self) -> list[str]:
        return [f"d{k}" for k in range(len(self.cardinalities()))]

    def groups(self) -> list[list[int]]:
        """Decision indices grouped into blocks (default: one decision per block)."""
        return [[k] for k in range(len(self.cardinalities()))]

    # ---- defaults built on the decision vector
    def size(self) -> int:
        return int(np.prod([float(c) for c in self.cardinalities()]))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.decode([int(rng.integers(c)) for c in self.cardinalities()])

    def mutate(self, genotype: Any, rng: np.random.Generator, n: int = 1) -> Any:
        """Changes ``n`` random decisions to a different option (Real et al. 2019 mutation)."""
        x = self.encode(genotype)
        card = self.cardinalities()
        mutable = [k for k, c in enumerate(card) if c > 1]
        for k in rng.choice(mutable, size=min(n, len(mutable)), replace=False):
            x[k] = int((x[k] + rng.integers(1, card[k])) % card[k])
        return self.decode(x)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        """Uniform crossover per decision group."""
        xa, xb = self.encode(a), self.encode(b)
        for group in self.groups():
            if rng.random() < 0.5:
                for k in group:
                    xa[k] = xb[k]
        return self.decode(xa)

    def one_hot(self, genotype: Any) -> np.ndarray:
        x = self.encode(genotype)
        out = np.zeros(sum(self.cardinalities()), dtype=np.float32)
        offset = 0
        for k, c in enumerate(self.cardinalities()):
            out[offset + x[k]] = 1.0
            offset += c
        return out

    def neighbours(self, genotype: Any) -> list[Any]:
        """All genotypes one decision away."""
        x = self.encode(genotype)
        out = []
        for k, c in enumerate(self.cardinalities()):
            for v in range(c):
                if v != x[k]:
                    y = list(x)
                    y[k] = v
                    out.append(self.decode(y))
        return out

    def describe(self, genotype: Any) -> str:
        return str(genotype)


SPACES: Registry[type[SearchSpace]] = Registry("space", "zoo.space", plugins=True)
