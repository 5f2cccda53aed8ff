"""Writes the architecture-only entries of the published genotypes into zoo/hub/registry.json.

Run after changing zoo/space/published.py, tasks/classification/published.py's PUBLISHED_INFO or
tasks/segmentation/published.py or tasks/translation/published.py:
    .venv/bin/python scripts/zoo_published_entries.py
Entries with weights (added by `python -m zoo.hub push`) are kept as they are.
"""

from __future__ import annotations

import json

from tasks.classification.published import published_entries
from tasks.segmentation.published import published_entries as segmentation_entries
from tasks.translation.published import published_entries as translation_entries
from zoo.hub.registry import BUILTIN_REGISTRY, write_registry


def main() -> None:
    new = published_entries() + segmentation_entries() + translation_entries()
    names = {e["name"] for e in new}
    old = json.loads(BUILTIN_REGISTRY.read_text())["entries"] if BUILTIN_REGISTRY.is_file() else []
    write_registry(BUILTIN_REGISTRY, [e for e in old if e["name"] not in names] + new)
    for e in new:
        print(f"{e['name']:<12} {e['params']:>10,} params")


if __name__ == "__main__":
    main()
