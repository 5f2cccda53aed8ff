"""The DARTS cell space as a decision vector (Liu et al., ICLR 2019).

Per node ``i`` of the normal and the reduction cell four decisions: first input
(``i + 2`` options), its op, second input (``i + 1`` options: the remaining inputs,
so a node never reads one state twice) and its op. Ops exclude ``none``, as in the
discretised DARTS cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.config_values import POSITIVE_INT, Text, check_values
from zoo.space.base import SPACES, SearchSpace
from zoo.space.genotype import Genotype, GenotypeError
from zoo.space.ops import DARTS_OPS, ops_for


@SPACES.register("darts")
class DartsSpace(SearchSpace):
    name = "darts"
    domain = "image"  # the ops' domain (zoo.space.ops); a subclass over other tensors changes it
    zero = "none"  # that domain's zero op: in the supernet's mixtures, never in a discrete cell

    def __init__(self, steps: int = 4, primitives: Sequence[str] = DARTS_OPS, **_: Any) -> None:
        check_values(
            {"steps": steps, "primitives": list(primitives) if isinstance(primitives, (list, tuple)) else primitives},
            {"steps": POSITIVE_INT, "primitives": Text(items=True)},
            "space",
        )
        allowed = ops_for(self.domain)
        unknown = [p for p in primitives if p not in allowed]
        if unknown:
            raise ValueError(f"space.primitives has unknown op {unknown[0]!r}; allowed: {', '.join(allowed)}")
        if self.zero in primitives and primitives[0] != self.zero:
            raise ValueError(f"space.primitives: {self.zero!r} must come first when present")
        self.steps = steps
        self.primitives = list(primitives)
        self.ops = [p for p in self.primitives if p != self.zero]
        if not self.ops:
            raise ValueError(f"space.primitives={self.primitives!r} is invalid; allowed: at least one op besides {self.zero!r}")

    def cardinalities(self) -> list[int]:
        card: list[int] = []
        for _cell in ("normal", "reduce"):
            for i in range(self.steps):
                card += [i + 2, len(self.ops), i + 1, len(self.ops)]
        return card

    def decision_names(self) -> list[str]:
        return [
            f"{cell}.node{i}.{what}" for cell in ("normal", "reduce") for i in range(self.steps) for what in ("in1", "op1", "in2", "op2")
        ]

    def groups(self) -> list[list[int]]:
        return [list(range(4 * g, 4 * g + 4)) for g in range(2 * self.steps)]

    def _decode_cell(self, x: Sequence[int]) -> tuple[tuple[str, int], ...]:
        edges = []
        for i in range(self.steps):
            a, oa, b, ob = x[4 * i : 4 * i + 4]
            rest = [j for j in range(i + 2) if j != a]
            edges += [(self.ops[oa], int(a)), (self.ops[ob], rest[b])]
        return tuple(edges)

    def decode(self, choices: Sequence[int]) -> Genotype:
        n = 4 * self.steps
        concat = tuple(range(2, self.steps + 2))
        return Genotype(self._decode_cell(choices[:n]), concat, self._decode_cell(choices[n:]), concat)

    def _encode_cell(self, edges: Sequence[tuple[str, int]]) -> list[int]:
        x: list[int] = []
        for i in range(self.steps):
            (na, a), (nb, b) = edges[2 * i], edges[2 * i + 1]
            if a == b:
                raise GenotypeError(f"node {i} reads input {a} twice, which space '{self.name}' cannot express")
            for name in (na, nb):
                if name not in self.ops:
                    raise GenotypeError(f"op {name!r} is not in space '{self.name}'; allowed: {', '.join(self.ops)}")
            rest = [j for j in range(i + 2) if j != a]
            x += [a, self.ops.index(na), rest.index(b), self.ops.index(nb)]
        return x

    def encode(self, genotype: Genotype) -> list[int]:
        if genotype.steps != self.steps:
            raise GenotypeError(f"genotype has {genotype.steps} nodes per cell; space '{self.name}' has {self.steps}")
        return self._encode_cell(genotype.normal) + self._encode_cell(genotype.reduce)

    def genotype_from_json(self, data: dict[str, Any]) -> Genotype:
        return Genotype.from_json(data)
