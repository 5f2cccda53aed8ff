"""The policy space: a DARTS-style cell over dense ops for the policy tower and one for the value tower.

An actor-critic network (as in PPO) has two towers from the observation: the policy's, which
ends in the action distribution, and the value function's. Each tower is a stack of cells in
the DARTS form (Liu et al., ICLR 2019): every node sums two ops, each reading the cell's two
inputs (the outputs of the two cells before) or an earlier node, and the cell concatenates its
nodes. RL-DARTS (Miao et al., "Differentiable Architecture Search for Reinforcement Learning",
AutoML-Conf 2022) searched such cells for policies.

:class:`PolicyGenotype` holds both cells in a DARTS :class:`Genotype` (``normal`` = the policy
cell, ``reduce`` = the value cell; nothing is reduced here, the field names are the DARTS
genotype's). :class:`PolicySpace` (registered ``policy``) is the DARTS space's decision vector
over the ``dense`` ops of :mod:`zoo.space.ops`, so every multi-trial strategy searches it unchanged.

Image observations (MinAtar's planes, Atari frames) are searched in the shared image cell space instead:
the DARTS space of task=classification, a normal and a reduction cell over the image ops, whose
genotypes are plain DARTS :class:`Genotype` s. They form the convolutional encoder that the policy and
the value heads share (:class:`tasks.rl.model.CellEncoder`), as SB3's ``CnnPolicy`` shares its
``NatureCNN``. The ``policy`` space takes that form when its ``env`` (the run's ``data.env``) has image
observations, so ``task=rl data.env=MinAtar/Breakout-v1`` searches convolutional cells with no other option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zoo.space.base import SPACES
from zoo.space.darts_space import DartsSpace
from zoo.space.genotype import Genotype, GenotypeError, genotype_class
from zoo.space.ops import DARTS_OPS, ops_for

DENSE_OPS = (
    "dense_none",
    "dense_identity",
    "dense_tanh",
    "dense_relu",
    "dense_silu",
    "dense_elu",
    "dense_sigmoid_gate",
    "dense_layer_norm",
    "dense_wide_tanh",
    "dense_wide_relu",
)


@genotype_class
@dataclass(frozen=True)
class PolicyGenotype:
    """The policy cell (``cell.normal``) and the value cell (``cell.reduce``) of an actor-critic network."""

    cell: Genotype

    space: ClassVar[str] = "policy"
    task: ClassVar[str] = "rl"  # zoo.create_model builds it with the rl task's builder

    def __post_init__(self) -> None:
        if not isinstance(self.cell, Genotype):
            raise GenotypeError(f"policy genotype field 'cell' must be a DARTS genotype, got {type(self.cell).__name__}")
        ops = {op for op, _ in (*self.cell.normal, *self.cell.reduce)}
        odd = sorted(ops - set(DENSE_OPS))
        if odd:
            raise GenotypeError(f"policy genotype has op {odd[0]!r}; allowed: {', '.join(DENSE_OPS[1:])}")

    @property
    def policy(self) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
        return self.cell.normal, self.cell.normal_concat

    @property
    def value(self) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
        return self.cell.reduce, self.cell.reduce_concat

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "cell": self.cell.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicyGenotype:
        if "cell" not in data:
            raise GenotypeError("policy genotype is missing field cell")
        return cls(Genotype.from_json(data["cell"]))

    def draw(self) -> Any:
        """The policy cell (left) and the value cell (right)."""
        import matplotlib.pyplot as plt

        from zoo.plots import draw_cell

        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
        draw_cell(left, *self.policy, "policy cell")
        draw_cell(right, *self.value, "value cell")
        return fig

    def __str__(self) -> str:
        def cell(edges: Sequence[tuple[str, int]]) -> str:
            return ", ".join(f"{op.removeprefix('dense_')}<-{src}" for op, src in edges)

        return f"policy=[{cell(self.cell.normal)}] value=[{cell(self.cell.reduce)}]"


@SPACES.register("policy")
class PolicySpace(DartsSpace):
    """The DARTS decision vector (policy cell, then value cell) over the dense ops; when ``env`` has image
    observations, the DARTS decision vector (normal cell, then reduction cell) over ``image_primitives``, whose
    genotypes are DARTS :class:`Genotype` s (:attr:`image`)."""

    name = "policy"
    domain = "dense"
    zero = "dense_none"

    def __init__(
        self,
        steps: int = 2,
        primitives: Sequence[str] = DENSE_OPS,
        image_primitives: Sequence[str] = DARTS_OPS,
        env: str | None = None,
        **kw: Any,
    ) -> None:
        image_ops = ops_for("image")
        odd = [p for p in image_primitives if p not in image_ops] if isinstance(image_primitives, (list, tuple)) else [image_primitives]
        if odd:
            raise ValueError(f"space.image_primitives has op {odd[0]!r}, which is not an image op; allowed: {', '.join(image_ops)}")
        from tasks.rl.data import has_image_observations

        self.env = env
        self.image = has_image_observations(env)
        if self.image:  # the shared image cell space (the classification ops)
            self.domain, self.zero = "image", "none"
            super().__init__(steps, image_primitives, **kw)
        else:
            super().__init__(steps, primitives, **kw)

    def decode(self, choices: Sequence[int]) -> PolicyGenotype | Genotype:  # type: ignore[override]
        if self.image:
            return super().decode(choices)
        return PolicyGenotype(super().decode(choices))

    def encode(self, genotype: PolicyGenotype | Genotype) -> list[int]:  # type: ignore[override]
        if self.image:
            if not isinstance(genotype, Genotype):
                raise GenotypeError(f"space 'policy' takes DARTS genotypes for image observations, got {type(genotype).__name__}")
            return super().encode(genotype)
        if not isinstance(genotype, PolicyGenotype):
            raise GenotypeError(f"space 'policy' takes policy genotypes, got {type(genotype).__name__}")
        for concat in (genotype.cell.normal_concat, genotype.cell.reduce_concat):
            if tuple(concat) != tuple(range(2, self.steps + 2)):
                raise GenotypeError(f"cell concatenates nodes {list(concat)}; space 'policy' concatenates all nodes")
        return super().encode(genotype.cell)

    def genotype_from_json(self, data: dict[str, Any]) -> PolicyGenotype | Genotype:  # type: ignore[override]
        if self.image:
            return Genotype.from_json(data)
        return PolicyGenotype.from_json(data)


def mlp_genotype(steps: int = 2, op: str = "dense_tanh") -> PolicyGenotype:
    """A chain: node i reads node i-1 (input 1 for node 0) through ``op`` and, by a residual, the input before it."""
    edges = []
    for i in range(steps):
        edges += [(op, i + 1), ("dense_identity", i)]
    cat = tuple(range(2, steps + 2))
    return PolicyGenotype(Genotype(tuple(edges), cat, tuple(edges), cat))
