"""Genotypes: plain, hashable, JSON-serialisable descriptions of architectures.

The genotype is the contract between strategies and tasks. Every genotype class has
``space`` (the name of the search space it belongs to), ``to_json() -> dict`` and a
``from_json(dict)`` classmethod; :func:`genotype_from_json` dispatches on ``space``.

:class:`Genotype` is the DARTS cell genotype (Liu et al., ICLR 2019): for each of the
``steps`` intermediate nodes of a normal and a reduction cell, two ``(op, input)`` pairs,
where input 0 and 1 are the two previous cells' outputs and ``i + 2`` is node ``i``.
It reads and writes the text form used by the DARTS code,
``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

Edge = tuple[str, int]


class GenotypeError(ValueError):
    """A genotype that cannot be read; the message is one line naming the problem."""


class AnyGenotype(Protocol):
    space: ClassVar[str]

    def to_json(self) -> dict[str, Any]: ...


_GENOTYPE_CLASSES: dict[str, type] = {}


def genotype_class(cls: type) -> type:
    """Class decorator: makes ``cls`` readable by :func:`genotype_from_json`."""
    _GENOTYPE_CLASSES[cls.space] = cls  # type: ignore[attr-defined]
    return cls


def genotype_from_json(data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype JSON must be an object, got {type(data).__name__}")
    space = data.get("space", "darts")
    if space not in _GENOTYPE_CLASSES:
        # spaces defined in other modules register their genotype class on import
        from zoo.space.base import SPACES

        SPACES.names()
    if space not in _GENOTYPE_CLASSES:
        raise GenotypeError(f"genotype field 'space' is {space!r}; allowed: {', '.join(sorted(_GENOTYPE_CLASSES))}")
    return _GENOTYPE_CLASSES[space].from_json(data)


def load_genotype(path: str | Path) -> Any:
    """Reads a ``genotype.json`` file; any problem is one :class:`GenotypeError` line."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenotypeError(f"genotype file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenotypeError(f"genotype file {path} is not valid JSON: {e}") from None
    try:
        return genotype_from_json(data)
    except GenotypeError as e:
        raise GenotypeError(f"genotype file {path}: {e}") from None


def _check_edges(field: str, edges: Any, steps: int | None = None) -> tuple[Edge, ...]:
    from zoo.space.ops import OPS

    if not isinstance(edges, (list, tuple)):
        raise GenotypeError(f"genotype field {field!r} must be a list of [op, input] pairs, got {edges!r}")
    out = []
    for k, e in enumerate(edges):
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int)):
            raise GenotypeError(f"genotype field {field}[{k}] must be [op_name, input_index], got {e!r}")
        name, src = e
        if name not in OPS:
            by_domain = {}
            for op_name, spec in OPS.items():
                by_domain.setdefault(spec.domain, []).append(op_name)
            allowed = "; ".join(f"{d} ops: {', '.join(sorted(names))}" for d, names in sorted(by_domain.items()))
            raise GenotypeError(f"genotype field {field}[{k}] has unknown op {name!r}; allowed: {allowed}")
        node = k // 2
        if not 0 <= src < node + 2:
            raise GenotypeError(f"genotype field {field}[{k}] input {src} is out of range for node {node} (allowed 0..{node + 1})")
        out.append((name, src))
    if len(out) % 2:
        raise GenotypeError(f"genotype field {field!r} must have two edges per node, got {len(out)} edges")
    return tuple(out)


@genotype_class
@dataclass(frozen=True)
class Genotype:
    """DARTS cell genotype (normal and reduction cell)."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    space: ClassVar[str] = "darts"

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_edges("normal", self.normal))
        object.__setattr__(self, "reduce", _check_edges("reduce", self.reduce))
        for field, edges in (("normal_concat", self.normal), ("reduce_concat", self.reduce)):
            concat = tuple(getattr(self, field))
            n_nodes = len(edges) // 2 + 2
            if not concat or any((not isinstance(c, int)) or c < 0 or c >= n_nodes for c in concat):
                raise GenotypeError(f"genotype field {field!r} is {list(concat)}; allowed: node indices 0..{n_nodes - 1}")
            object.__setattr__(self, field, concat)

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Genotype:
        missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in data]
        if missing:
            raise GenotypeError(f"genotype is missing field(s) {', '.join(missing)}")
        return cls(
            normal=data["normal"],
            normal_concat=data["normal_concat"],
            reduce=data["reduce"],
            reduce_concat=data["reduce_concat"],
        )

    # ---- DARTS text form
    def to_text(self) -> str:
        def concat(c: tuple[int, ...]) -> str:
            if len(c) > 1 and list(c) == list(range(c[0], c[-1] + 1)):
                return f"range({c[0]}, {c[-1] + 1})"
            return repr(list(c))

        return (
            f"Genotype(normal={[tuple(e) for e in self.normal]!r}, normal_concat={concat(self.normal_concat)}, "
            f"reduce={[tuple(e) for e in self.reduce]!r}, reduce_concat={concat(self.reduce_concat)})"
        )

    @classmethod
    def from_text(cls, text: str) -> Genotype:
        """Parses the DARTS text form without evaluating code (only literals and ``range``)."""
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise GenotypeError(f"genotype text is not a Genotype(...) expression: {e.msg}") from None
        call = tree.body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Genotype" and not call.args):
            raise GenotypeError("genotype text must be Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)")
        fields: dict[str, Any] = {}
        for kw in call.keywords:
            fields[kw.arg] = _literal(kw.value, kw.arg or "?")
        return cls.from_json({k: _jsonish(v) for k, v in fields.items()})

    def __str__(self) -> str:
        return self.to_text()


def _literal(node: ast.AST, field: str) -> Any:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        args = [ast.literal_eval(a) for a in node.args]
        return list(range(*args))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(f"genotype text field {field!r} is not a literal") from None


def _jsonish(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonish(x) for x in v]
    if isinstance(v, list):
        return [_jsonish(x) for x in v]
    return v


def genotype_key(g: Any) -> str:
    """A stable string key for caches and logs."""
    return json.dumps(g.to_json(), sort_keys=True, separators=(",", ":"))


def as_edges(seq: Sequence[Sequence[Any]]) -> tuple[Edge, ...]:
    return tuple((str(a), int(b)) for a, b in seq)
