"""The detection space: a DARTS-cell backbone and a NAS-FPN neck, searched together or one at a time.

:class:`DetectionGenotype` (space ``detection``) always holds both parts, so a genotype
alone rebuilds the model. :class:`DetectionSpace` (registered ``detection``) is a
composite :class:`SearchSpace`: its decision vector is the concatenation of the searched
parts' vectors (``target`` = ``backbone``, ``neck`` or ``both``); the part that is not
searched is fixed (a published cell such as ``darts_v2`` for the backbone, the
hand-designed top-down + bottom-up neck for the neck). Every multi-trial strategy works
on it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from zoo.space.base import SPACES, SearchSpace
from zoo.space.darts_space import DartsSpace
from zoo.space.fpn import NECK_OPS, NasFpnSpace, NeckGenotype, fpn_neck_genotype
from zoo.space.genotype import Genotype, GenotypeError, genotype_class
from zoo.space.ops import DARTS_OPS

TARGETS = ("backbone", "neck", "both")


@genotype_class
@dataclass(frozen=True)
class DetectionGenotype:
    """Backbone cells (a DARTS :class:`Genotype`) + neck merging cells (a :class:`NeckGenotype`)."""

    backbone: Genotype
    neck: NeckGenotype

    space: ClassVar[str] = "detection"
    task: ClassVar[str] = "detection"  # zoo.create_model builds it with the detection task's builder

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, Genotype):
            raise GenotypeError(f"detection genotype field 'backbone' must be a DARTS genotype, got {type(self.backbone).__name__}")
        if not isinstance(self.neck, NeckGenotype):
            raise GenotypeError(f"detection genotype field 'neck' must be a neck genotype, got {type(self.neck).__name__}")

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "backbone": self.backbone.to_json(), "neck": self.neck.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionGenotype:
        missing = [k for k in ("backbone", "neck") if k not in data]
        if missing:
            raise GenotypeError(f"detection genotype is missing field(s) {', '.join(missing)}")
        return cls(Genotype.from_json(data["backbone"]), NeckGenotype.from_json(data["neck"]))

    def __str__(self) -> str:
        return f"backbone={self.backbone.to_text()} neck={self.neck}"


def _resolve_backbone(arch: Any) -> Genotype:
    if isinstance(arch, Genotype):
        return arch
    if isinstance(arch, dict):
        return Genotype.from_json(arch)
    from zoo.space.published import PUBLISHED

    key = str(arch).lower().replace("-", "_")
    if key in PUBLISHED:
        return PUBLISHED[key]
    if str(arch).strip().startswith("Genotype("):
        return Genotype.from_text(str(arch))
    raise ValueError(f"space.fixed_backbone={arch!r} is unknown; allowed: {', '.join(sorted(PUBLISHED))} or a genotype")


@SPACES.register("detection")
class DetectionSpace(SearchSpace):
    """Concatenated decision vectors of the searched parts (backbone first)."""

    name = "detection"

    def __init__(
        self,
        target: str = "both",
        steps: int = 4,
        primitives: Sequence[str] = DARTS_OPS,
        neck_cells: int = 5,
        min_level: int = 3,
        max_level: int = 5,
        neck_ops: Sequence[str] = NECK_OPS,
        fixed_backbone: Any = "darts_v2",
        fixed_neck: Any = None,
        **_: Any,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"search.target={target!r} is invalid; allowed: {', '.join(TARGETS)}")
        self.target = target
        self.backbone_space = DartsSpace(steps, primitives)
        self.neck_space = NasFpnSpace(neck_cells, min_level, max_level, neck_ops)
        self.primitives = self.backbone_space.primitives
        self.steps = steps
        self.fixed_backbone = _resolve_backbone(fixed_backbone)
        self.fixed_neck = (
            NeckGenotype.from_json(fixed_neck)
            if isinstance(fixed_neck, dict)
            else fpn_neck_genotype(min_level, max_level, neck_cells - (max_level - min_level + 1))
        )
        self.parts: list[tuple[str, SearchSpace]] = []
        if target in ("backbone", "both"):
            self.parts.append(("backbone", self.backbone_space))
        if target in ("neck", "both"):
            self.parts.append(("neck", self.neck_space))

    def _split(self, x: Sequence[int]) -> dict[str, list[int]]:
        out, i = {}, 0
        for name, sp in self.parts:
            n = len(sp.cardinalities())
            out[name] = list(x[i : i + n])
            i += n
        return out

    def cardinalities(self) -> list[int]:
        return [c for _, sp in self.parts for c in sp.cardinalities()]

    def decision_names(self) -> list[str]:
        names = []
        for name, sp in self.parts:
            names += [n if n.startswith(name) else f"{name}.{n}" for n in sp.decision_names()]
        return names

    def groups(self) -> list[list[int]]:
        out, offset = [], 0
        for _, sp in self.parts:
            out += [[offset + k for k in g] for g in sp.groups()]
            offset += len(sp.cardinalities())
        return out

    def decode(self, choices: Sequence[int]) -> DetectionGenotype:
        x = self._split(choices)
        backbone = self.backbone_space.decode(x["backbone"]) if "backbone" in x else self.fixed_backbone
        neck = self.neck_space.decode(x["neck"]) if "neck" in x else self.fixed_neck
        return DetectionGenotype(backbone, neck)

    def encode(self, genotype: DetectionGenotype) -> list[int]:
        x: list[int] = []
        for name, sp in self.parts:
            x += sp.encode(getattr(genotype, name))
        return x

    def genotype_from_json(self, data: dict[str, Any]) -> DetectionGenotype:
        return DetectionGenotype.from_json(data)

    def describe(self, genotype: Any) -> str:
        return str(genotype)
