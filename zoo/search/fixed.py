"""``search=fixed``: no search, retrain a given architecture (a published name, a
``genotype.json`` path or the DARTS text form) — the baseline every search is
compared with, and the way to retrain a genotype found elsewhere."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy
from zoo.space.genotype import load_genotype


@STRATEGIES.register("fixed")
class Fixed(OneShotStrategy):
    needs_problem = False

    def __init__(self, seed: int = 0, arch: str | None = None, progress: bool = True, **_: Any) -> None:
        super().__init__(seed)
        if not arch:
            raise ConfigError("search.arch is not set; allowed: a published name (darts_v2, ...), a genotype.json path or Genotype(...) text")
        if str(arch).endswith(".json") or Path(str(arch)).is_file():
            self.genotype = load_genotype(arch)
        else:
            from zoo.models import resolve_genotype

            self.genotype = resolve_genotype(arch)

    def search(self, problem: Any, log: Callable[[dict[str, Any]], None] | None = None) -> Any:
        return self.genotype
