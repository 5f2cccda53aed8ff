"""The segmentation space of Auto-DeepLab (Liu et al., "Auto-DeepLab: Hierarchical Neural
Architecture Search for Semantic Image Segmentation", CVPR 2019): one DARTS cell plus a
network-level path.

The network is a trellis of ``layers`` cells over four resolutions, levels 0..3 = strides
4, 8, 16, 32 of the input. After the stride-4 stem (level 0), each layer keeps, halves or
doubles the resolution of the one before: ``path[l]`` is layer ``l``'s level and
``|path[l] - path[l-1]| <= 1`` (with ``path[-1] = 0``, the stem).

:class:`SegmentationGenotype` holds the cell (a DARTS :class:`Genotype`; only its normal
cell is used, since the path, not the cell, changes the resolution) and the path.
:class:`SegmentationSpace` (registered ``segmentation``) is its decision vector for the
multi-trial strategies: the normal cell's node decisions of the DARTS space, then one
decision per layer, the move (0 = to the finer level, 1 = stay, 2 = to the coarser level;
a move past level 0 or 3 stays, so every vector decodes to a valid path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zoo.config_values import POSITIVE_INT, check_values
from zoo.space.base import SPACES, SearchSpace
from zoo.space.darts_space import DartsSpace
from zoo.space.genotype import Genotype, GenotypeError, genotype_class
from zoo.space.ops import DARTS_OPS

LEVELS = 4  # strides 4, 8, 16, 32
STRIDES = tuple(4 * 2**k for k in range(LEVELS))


def check_path(path: Sequence[int]) -> tuple[int, ...]:
    """``path`` as a tuple after checking it; one :class:`GenotypeError` line naming the first bad layer."""
    try:
        out = tuple(int(v) for v in path)
    except (TypeError, ValueError):
        raise GenotypeError(f"segmentation path must be a list of levels 0..{LEVELS - 1}, got {path!r}") from None
    if not out:
        raise GenotypeError("segmentation path is empty; allowed: one level (0..3) per layer")
    prev = 0
    for l, lv in enumerate(out):
        if not 0 <= lv < LEVELS:
            raise GenotypeError(
                f"segmentation path layer {l} has level {lv}; allowed: 0..{LEVELS - 1} (strides {', '.join(map(str, STRIDES))})"
            )
        if abs(lv - prev) > 1:
            raise GenotypeError(
                f"segmentation path layer {l} jumps from level {prev} to {lv}; allowed: keep, halve or double the resolution (a step of 1)"
            )
        prev = lv
    return out


@genotype_class
@dataclass(frozen=True)
class SegmentationGenotype:
    """A cell (its ``normal`` half is used in every layer) and the network-level path (one level per layer)."""

    cell: Genotype
    path: tuple[int, ...]

    space: ClassVar[str] = "segmentation"
    task: ClassVar[str] = "segmentation"  # zoo.create_model builds it with the segmentation task's builder

    def __post_init__(self) -> None:
        if not isinstance(self.cell, Genotype):
            raise GenotypeError(f"segmentation genotype field 'cell' must be a DARTS genotype, got {type(self.cell).__name__}")
        if self.cell.reduce != self.cell.normal or self.cell.reduce_concat != self.cell.normal_concat:
            object.__setattr__(self, "cell", cell_genotype(self.cell.normal, self.cell.normal_concat))  # only the normal half is used
        object.__setattr__(self, "path", check_path(self.path))

    @property
    def layers(self) -> int:
        return len(self.path)

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "cell": self.cell.to_json(), "path": list(self.path)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentationGenotype:
        missing = [k for k in ("cell", "path") if k not in data]
        if missing:
            raise GenotypeError(f"segmentation genotype is missing field(s) {', '.join(missing)}")
        if not isinstance(data["path"], (list, tuple)):
            raise GenotypeError(f"segmentation genotype field 'path' must be a list of levels 0..{LEVELS - 1}, got {data['path']!r}")
        return cls(Genotype.from_json(data["cell"]), tuple(data["path"]))

    def draw(self) -> Any:
        """A figure of the cell (above) and the path through the trellis of layers x strides (below)."""
        import matplotlib.pyplot as plt

        from zoo.plots import draw_cell

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7.5), dpi=110, gridspec_kw={"height_ratios": [3, 2]})
        draw_cell(top, self.cell.normal, self.cell.normal_concat, "cell (every layer)")
        L = len(self.path)
        xs = list(range(-1, L))
        for l in xs:  # the nodes a path can reach: level <= layer + 1 (layer -1 is the stem)
            levels = [0] if l < 0 else range(min(l + 1, LEVELS - 1) + 1)
            bottom.scatter([l] * len(levels), list(levels), s=30, color="0.8", zorder=1)
        bottom.plot(xs, [0, *self.path], "-o", color="tab:blue", lw=2, ms=7, zorder=2)
        bottom.set_xticks(xs, ["stem", *(str(l) for l in range(L))])
        bottom.set_yticks(range(LEVELS), [f"stride {s}" for s in STRIDES])
        bottom.set_ylim(LEVELS - 0.5, -0.5)  # finer resolutions on top
        bottom.set_xlabel("layer")
        bottom.set_title("network-level path")
        bottom.grid(alpha=0.3)
        return fig

    def __str__(self) -> str:
        edges = ", ".join(f"{op}<-{src}" for op, src in self.cell.normal)
        return f"cell=[{edges}] path={list(self.path)} (strides {', '.join(str(STRIDES[v]) for v in self.path)})"


def cell_genotype(normal: Sequence[tuple[str, int]], concat: Sequence[int] | None = None) -> Genotype:
    """A DARTS genotype whose reduction half repeats the normal cell (segmentation uses only the normal cell)."""
    edges = tuple((str(op), int(src)) for op, src in normal)
    cat = tuple(concat) if concat is not None else tuple(range(2, len(edges) // 2 + 2))
    return Genotype(normal=edges, normal_concat=cat, reduce=edges, reduce_concat=cat)


# The Auto-DeepLab architecture as released with the paper (DeepLab's model zoo, "autodeeplab"):
# path 0,0,0,1,2,1,2,2,3,3,2,1 and a five-block cell whose blocks all feed the output. Its ops
# atrous 3x3/5x5 (rate 2) and separable 3x3/5x5 (applied twice) are DARTS' dil_conv_* and sep_conv_*;
# input 0 is the cell two layers back, input 1 the previous layer.
AUTODEEPLAB = SegmentationGenotype(
    cell_genotype(
        (
            ("dil_conv_5x5", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("dil_conv_3x3", 1),
            ("sep_conv_3x3", 3),
            ("sep_conv_3x3", 0),
            ("sep_conv_5x5", 4),
            ("sep_conv_5x5", 2),
            ("sep_conv_5x5", 3),
            ("dil_conv_5x5", 5),
        )
    ),
    (0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1),
)


def moves_to_path(moves: Sequence[int]) -> tuple[int, ...]:
    """Moves (0 finer, 1 stay, 2 coarser) -> levels, clamped to 0..3."""
    path, lv = [], 0
    for m in moves:
        lv = min(max(lv + int(m) - 1, 0), LEVELS - 1)
        path.append(lv)
    return tuple(path)


def path_to_moves(path: Sequence[int]) -> list[int]:
    prev, out = 0, []
    for lv in path:
        out.append(int(lv) - prev + 1)
        prev = int(lv)
    return out


@SPACES.register("segmentation")
class SegmentationSpace(SearchSpace):
    """The normal cell's decisions (as in the DARTS space) followed by one move per layer."""

    name = "segmentation"

    def __init__(self, steps: int = 3, layers: int = 6, primitives: Sequence[str] = DARTS_OPS, **_: Any) -> None:
        check_values({"steps": steps, "layers": layers}, {"steps": POSITIVE_INT, "layers": POSITIVE_INT}, "space")
        self.cell_space = DartsSpace(steps, primitives)
        self.steps = steps
        self.layers = layers
        self.primitives = self.cell_space.primitives
        self.n_cell = 4 * steps

    def cardinalities(self) -> list[int]:
        return self.cell_space.cardinalities()[: self.n_cell] + [3] * self.layers

    def decision_names(self) -> list[str]:
        return self.cell_space.decision_names()[: self.n_cell] + [f"path.layer{l}" for l in range(self.layers)]

    def groups(self) -> list[list[int]]:
        return self.cell_space.groups()[: self.steps] + [[self.n_cell + l] for l in range(self.layers)]

    def decode(self, choices: Sequence[int]) -> SegmentationGenotype:
        x = [int(v) for v in choices]
        cell = self.cell_space.decode(x[: self.n_cell] * 2)
        return SegmentationGenotype(cell_genotype(cell.normal, cell.normal_concat), moves_to_path(x[self.n_cell :]))

    def encode(self, genotype: SegmentationGenotype) -> list[int]:
        if not isinstance(genotype, SegmentationGenotype):
            raise GenotypeError(f"space 'segmentation' takes segmentation genotypes, got {type(genotype).__name__}")
        if genotype.cell.steps != self.steps:
            raise GenotypeError(
                f"genotype has {genotype.cell.steps} nodes per cell; space 'segmentation' has {self.steps} (space.steps={genotype.cell.steps})"
            )
        if genotype.layers != self.layers:
            raise GenotypeError(
                f"genotype's path has {genotype.layers} layers; space 'segmentation' has {self.layers} (space.layers={genotype.layers})"
            )
        cell = self.cell_space.encode(cell_genotype(genotype.cell.normal, genotype.cell.normal_concat))[: self.n_cell]
        if tuple(genotype.cell.normal_concat) != tuple(range(2, self.steps + 2)):
            raise GenotypeError(f"cell concatenates nodes {list(genotype.cell.normal_concat)}; space 'segmentation' concatenates all nodes")
        return cell + path_to_moves(genotype.path)

    def genotype_from_json(self, data: dict[str, Any]) -> SegmentationGenotype:
        return SegmentationGenotype.from_json(data)
