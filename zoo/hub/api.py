"""Loading from the zoo: names, bundle directories and archives to ready models.

``from_pretrained(path_or_name)`` and ``create_model(name, pretrained=True)`` are the
user-facing calls (re-exported by :mod:`zoo`). A name is looked up in the registries
(:mod:`zoo.hub.registry`) and its files fetched into the cache
``$ZOO_HOME/hub/NAME/REVISION/`` (:mod:`zoo.hub.download`); weights are read with
safetensors only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from zoo.hub.archive import unpack, unpack_cached
from zoo.hub.download import HubError, fetch_file, file_lock, zoo_home
from zoo.hub.registry import Entry, get_entry

Registries = str | Iterable[str] | None


def entry_dir(entry: Entry, root: Path | None = None) -> Path:
    return (root or zoo_home() / "hub") / entry.name / entry.revision


def fetch_entry(entry: Entry, dest: str | Path | None = None, progress: bool = True) -> Path:
    """Fetches (or finds in the cache) every file of ``entry``; returns the bundle directory.

    ``dest`` puts the bundle in that directory instead of the cache. A benchmark entry's
    files (tables, not a model) are fetched the same way; its directory holds no config.json.
    """
    benchmark = entry.kind == "benchmark"
    if not benchmark and not entry.has_weights:
        raise HubError(
            f"{entry.name} is architecture-only: no weights are published; build it untrained with zoo.create_model({entry.name!r})"
        )
    d = Path(dest) if dest is not None else entry_dir(entry)
    for f in entry.files:
        path = fetch_file(list(f.urls), d / f.name, f.sha256, f.size, desc=f"{entry.name}/{f.name}", progress=progress)
        if f.is_archive:
            marker = d / f".{f.name}.unpacked"
            with file_lock(d / f".{f.name}.unpack.lock"):
                if not (marker.is_file() and marker.read_text() == f.sha256):
                    unpack(path, d)
                    marker.write_text(f.sha256)
    if not benchmark and not (d / "config.json").is_file():
        raise HubError(f"{entry.name}: the fetched files hold no config.json")
    return d


def locate_bundle(path_or_name: str | Path, registry: Registries = None, label: str | None = None) -> Path | Entry:
    """What a checkpoint reference names, with no weights fetched: the bundle directory of a directory
    or a ``.tar``/``.zip`` archive (unpacked once into the cache), or the registry entry of a zoo name.

    ``label`` names the option the reference came from in the one-line errors (``checkpoint=PATH ...``).
    """
    prefix = f"{label}=" if label else ""
    p = Path(path_or_name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise HubError(f"{prefix}{p} has no config.json; a bundle directory holds config.json and model.safetensors")
        return p
    if p.is_file():
        return unpack_cached(p)
    name = str(path_or_name)
    if "/" in name or name.startswith("."):
        raise HubError(f"{prefix}{name} does not exist (expected a bundle directory, a .tar/.zip bundle or a zoo name)")
    return get_entry(name, registry)


def resolve_bundle(
    path_or_name: str | Path, registry: Registries = None, progress: bool = True, label: str | None = None
) -> tuple[Path, str | None]:
    """The bundle directory of a path (directory or archive) or a zoo name (fetched into the cache);
    returns (directory, the entry's name or None). The one way from a checkpoint reference to a
    directory; ``label`` as for :func:`locate_bundle`."""
    found = locate_bundle(path_or_name, registry, label)
    if isinstance(found, Entry):
        return fetch_entry(found, progress=progress), found.name
    return found, None


def from_pretrained(path_or_name: str | Path, registry: Registries = None, progress: bool = True) -> nn.Module:
    """The ready (eval-mode) model of a zoo name, a bundle directory or a bundle archive."""
    from zoo.hub.bundle import load_bundle

    directory, _ = resolve_bundle(path_or_name, registry, progress)
    return load_bundle(directory)[0]


def create_model(name: Any, pretrained: bool = False, registry: Registries = None, **kwargs: Any) -> nn.Module:
    """timm-style factory over published genotypes, zoo entries and genotypes.

    ``pretrained=True`` loads the entry's weights (fetched into the cache); a different
    ``num_classes`` then replaces the classifier head. Other keyword arguments override
    the entry's model arguments (for ``pretrained=False``) or must match them.
    """
    from zoo.models import PUBLISHED
    from zoo.models import create_model as build

    is_name = isinstance(name, str) and not name.lstrip().startswith(("{", "Genotype("))
    if not is_name:
        if pretrained:
            raise HubError("pretrained=True needs a zoo name; a genotype has no weights")
        return build(name, **kwargs)
    if not pretrained and name.lower().replace("-", "_") in PUBLISHED:
        return build(name, **kwargs)
    entry = get_entry(name, registry)
    if not pretrained:
        return build(**{"task": entry.task, **entry.model, **kwargs})
    from zoo.hub.bundle import load_bundle

    num_classes = kwargs.pop("num_classes", None)
    fixed = {k: v for k, v in kwargs.items() if k in entry.model and entry.model[k] != v}
    if fixed:
        k, v = next(iter(fixed.items()))
        raise HubError(f"{name}: {k}={v!r} differs from the pretrained weights' {k}={entry.model[k]!r}; drop it or use pretrained=False")
    model, cfg = load_bundle(fetch_entry(entry))
    if num_classes is not None and num_classes != cfg["model"].get("num_classes"):
        model.reset_classifier(int(num_classes))  # type: ignore[operator]
    drop = kwargs.get("drop_path_prob")
    if drop is not None and hasattr(model, "drop_path_prob"):
        model.drop_path_prob = drop
    return model


def download(name: str, dest: str | Path | None = None, registry: Registries = None, progress: bool = True) -> Path:
    """Fetches an entry's files (a bundle, or a benchmark's tables) into ``dest`` (default: the cache); returns the directory."""
    return fetch_entry(get_entry(name, registry, kind=None), dest, progress)
