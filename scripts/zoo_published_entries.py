"""Writes the architecture-only entries of the published architectures into zoo/hub/registry.json.

Every plug-in's hub facts list theirs (``HubFacts.published_entries`` in ``tasks/<name>/hub.py``),
in the order of the task names. Run after changing one of them or zoo/space/published.py:
    .venv/bin/python scripts/zoo_published_entries.py
Entries with weights (added by `python -m zoo.hub push`) are kept as they are.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.hub.facts import HUB_FACTS
from zoo.hub.registry import BUILTIN_REGISTRY, write_registry


def published_entries() -> list[dict[str, Any]]:
    """The published entries of every registered task (its hub facts), task by task in name order."""
    return [entry for _, facts in HUB_FACTS.items() for entry in facts().published_entries()]


def main() -> None:
    new = published_entries()
    names = {e["name"] for e in new}
    old = json.loads(BUILTIN_REGISTRY.read_text())["entries"] if BUILTIN_REGISTRY.is_file() else []
    write_registry(BUILTIN_REGISTRY, [e for e in old if e["name"] not in names] + new)
    for e in new:
        print(f"{e['name']:<12} {e['params']:>10,} params")


if __name__ == "__main__":
    main()
