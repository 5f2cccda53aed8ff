"""Plug-ins: the packages that register tasks into the core's registries.

The core names no task. A task is a package (``tasks/<name>/`` in this repository, or any
package a downstream project declares under the entry-point group ``zoo.plugins``) whose
``__init__`` imports its modules; their decorators register the task, its spaces, model
builder, fine-tuner, hub facts and ecosystem bridges into the registries of :mod:`zoo`.
Registries created with ``plugins=True`` call :func:`load_plugins` before their first lookup,
so nothing in the core lists the tasks (as timm keeps a model's facts beside the model and
mmengine lets downstream packages fill its registries).

This module is the one place in :mod:`zoo` that imports the task packages.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

BUNDLED = ("tasks",)  # the task packages shipped with zoo: every sub-package is one task
ENTRY_POINT_GROUP = "zoo.plugins"  # downstream: [project.entry-points."zoo.plugins"] name = "pkg.task_module"

_loaded: list[ModuleType] | None = None
_loading = False


class PluginError(ValueError):
    """A task package that fails to import; one line naming it (every registry lookup would fail)."""


def _import(name: str, origin: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise PluginError(f"task package {name!r} ({origin}) failed to import: {type(e).__name__}: {e}") from e


def _bundled() -> list[ModuleType]:
    mods = []
    for name in BUNDLED:
        pkg = importlib.import_module(name)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.ispkg and not info.name.startswith("_"):
                mods.append(_import(f"{name}.{info.name}", "bundled with zoo"))
    return mods


def load_plugins() -> list[ModuleType]:
    """Imports every task package once (bundled first, then entry points); returns them."""
    global _loaded, _loading
    if _loaded is not None:
        return _loaded
    _loaded = []  # set first: a registry looked up while a plug-in is being imported sees what is registered so far
    _loading = True
    try:
        mods = _bundled()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            mods.append(_import(ep.value.partition(":")[0], f"entry point {ENTRY_POINT_GROUP}:{ep.name}"))
    except PluginError:
        _loaded = None  # the next lookup fails the same way instead of going on with some tasks missing
        raise
    finally:
        _loading = False
    _loaded.extend(mods)
    return _loaded


def loading() -> bool:
    """Whether the task packages are being imported right now (inside :func:`load_plugins`)."""
    return _loading


def conf_dirs() -> list[Path]:
    """Each plug-in's Hydra config folder (``<package>/conf``), added to the config search path."""
    out = []
    for mod in load_plugins():
        d = Path(mod.__file__).resolve().parent / "conf"  # type: ignore[arg-type]
        if d.is_dir():
            out.append(d)
    return out
