"""``search=fixed``: no search, retrain a given architecture (a published name, a zoo entry,
a ``genotype.json`` path or run directory, or the DARTS text form) — the baseline every search
is compared with, and the way to retrain a genotype found elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy
from zoo.space.genotype import GenotypeError, genotype_from_json, load_genotype

ALLOWED = (
    "a published name (darts_v2, ...), a zoo entry (python -m zoo.hub list), a genotype.json path or run directory, or Genotype(...) text"
)


def _existing(text: str) -> Path | None:
    """``text`` as an existing path, or ``None`` (also for strings too long to be a file name)."""
    try:
        p = Path(text).expanduser()
        return p if p.exists() else None
    except OSError:
        return None


def resolve_arch(arch: Any) -> Any:
    """The genotype named by ``search.arch``; one-line errors naming the value and what is allowed."""
    from zoo.models import PUBLISHED, resolve_genotype

    text = str(arch).strip()
    if text.startswith(("Genotype(", "{")):
        return resolve_genotype(text)
    path = _existing(text)
    if path is not None:
        if path.is_dir():
            if not (path / "genotype.json").is_file():
                raise ConfigError(f"search.arch={text} is a directory without genotype.json; allowed: {ALLOWED}")
            path = path / "genotype.json"
        return load_genotype(path)
    if text.endswith(".json") or "/" in text:
        raise ConfigError(f"search.arch={text} does not exist; allowed: {ALLOWED}")
    if text.lower().replace("-", "_") in PUBLISHED:
        return resolve_genotype(text)
    from zoo.hub.download import HubError
    from zoo.hub.registry import get_entry

    try:
        entry = get_entry(text)
    except HubError:
        raise ConfigError(f"search.arch={text!r} is unknown; allowed: {ALLOWED}; published: {', '.join(sorted(PUBLISHED))}") from None
    if "arch" not in entry.model:
        raise GenotypeError(f"zoo entry {text!r} records no genotype (model.arch)")
    return genotype_from_json(entry.model["arch"])


@STRATEGIES.register("fixed")
class Fixed(OneShotStrategy):
    needs_problem = False

    def __init__(self, seed: int = 0, arch: str | None = None, progress: bool = True, **_: Any) -> None:
        super().__init__(seed)
        if not arch:
            raise ConfigError(f"search.arch is not set; allowed: {ALLOWED}")
        self.genotype = resolve_arch(arch)

    def check_space(self, space: Any) -> None:
        if getattr(self.genotype, "space", None) != getattr(space, "name", None):
            raise ConfigError(
                f"search.arch is a {getattr(self.genotype, 'space', '?')!r} genotype, but space={space.name}; "
                f"allowed: an architecture of space {space.name!r}"
            )
        space.encode(self.genotype)  # GenotypeError (one line) when the cell does not fit the space (steps, ops)

    def search(self, problem: Any, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        return self.genotype
