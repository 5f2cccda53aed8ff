"""Plug-ins: the packages that register tasks into the core's registries.

The core names no task. A task is a package (``tasks/<name>/`` in this repository, or any
package a downstream project declares under the entry-point group ``zoo.plugins``) whose
``__init__`` imports its modules; their decorators register the task, its spaces, model
builder, fine-tuner, hub facts and ecosystem bridges into the registries of :mod:`zoo`.
Registries created with ``plugins=True`` call :func:`load_plugins` before their first lookup,
so nothing in the core lists the tasks (as timm keeps a model's facts beside the model and
mmengine lets downstream packages fill its registries).

A package may instead name the modules that register in ``PLUGIN_MODULES`` and import nothing
itself (the bundled tasks do): :func:`load_plugins` imports them, and a registry that only needs
one of them (``plugins="hub"``: the hub's facts) imports that module alone, so ``python -m zoo.hub
list`` reads the tasks' headline metrics without importing torch. The config folders are found
without importing anything (:func:`conf_dirs`), so ``python -m zoo --help`` imports no task either.

This module is the one place in :mod:`zoo` that imports the task packages.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

BUNDLED = ("tasks",)  # the task packages shipped with zoo: every sub-package is one task
ENTRY_POINT_GROUP = "zoo.plugins"  # downstream: [project.entry-points."zoo.plugins"] name = "pkg.task_module"

_loaded: list[ModuleType] | None = None
_loaded_parts: set[str] = set()  # the PLUGIN_MODULES names imported from every plug-in (load_plugins(only=...))
_loading = False


class PluginError(ValueError):
    """A task package that fails to import; one line naming it (every registry lookup would fail)."""


def _import(name: str, origin: str, plugin: str | None = None) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise PluginError(f"task package {plugin or name!r} ({origin}) failed to import: {type(e).__name__}: {e}") from e


def plugin_names() -> list[tuple[str, str]]:
    """(module name, where it comes from) of every plug-in, bundled first, then entry points; imports none of them."""
    out = []
    for name in BUNDLED:
        pkg = importlib.import_module(name)  # tasks/__init__.py imports nothing
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.ispkg and not info.name.startswith("_"):
                out.append((f"{name}.{info.name}", "bundled with zoo"))
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        out.append((ep.value.partition(":")[0], f"entry point {ENTRY_POINT_GROUP}:{ep.name}"))
    return out


def _import_plugin(name: str, origin: str, only: str | None = None) -> ModuleType:
    """Imports the plug-in and the modules it lists in ``PLUGIN_MODULES`` (``only``: that one, if listed)."""
    mod = _import(name, origin)
    for sub in getattr(mod, "PLUGIN_MODULES", ()):
        if only is None or sub == only:
            _import(f"{name}.{sub}", origin, plugin=name)
    return mod


def load_plugins(only: str | None = None) -> list[ModuleType]:
    """Imports every task package once (bundled first, then entry points) with the modules it
    lists in ``PLUGIN_MODULES``; returns the packages. ``only`` imports just that module of each
    package that lists its modules (a package without the list registers on import: it is imported)."""
    global _loaded, _loading
    if _loaded is not None:
        return _loaded
    if only is not None:
        if only in _loaded_parts:
            return []
        _loaded_parts.add(only)
        was, _loading = _loading, True
        try:
            return [_import_plugin(name, origin, only) for name, origin in plugin_names()]
        except PluginError:
            _loaded_parts.discard(only)
            raise
        finally:
            _loading = was
    _loaded = []  # set first: a registry looked up while a plug-in is being imported sees what is registered so far
    _loading = True
    try:
        mods = [_import_plugin(name, origin) for name, origin in plugin_names()]
    except PluginError:
        _loaded = None  # the next lookup fails the same way instead of going on with some tasks missing
        raise
    finally:
        _loading = False
    _loaded.extend(mods)
    return _loaded


def plugin_initializing() -> bool:
    """Whether a module of a plug-in package is half-imported right now (``import zoo`` from inside a
    task module's own import): a bridge run then would import that package again and find it half-built."""
    import sys

    names = tuple(name for name, _ in plugin_names())
    return any(
        getattr(getattr(m, "__spec__", None), "_initializing", False)
        for k, m in list(sys.modules.items())
        if k in names or k.startswith(tuple(f"{n}." for n in names))
    )


def loading() -> bool:
    """Whether the task packages are being imported right now (inside :func:`load_plugins`)."""
    return _loading


def conf_dirs() -> list[Path]:
    """Each plug-in's Hydra config folder (``conf/`` beside its module), added to the config search
    path; found without importing the plug-ins (``python -m zoo --help`` needs no task code)."""
    out = []
    for name, origin in plugin_names():
        try:
            spec = importlib.util.find_spec(name)
        except Exception as e:  # a parent package that fails to import
            raise PluginError(f"task package {name!r} ({origin}) failed to import: {type(e).__name__}: {e}") from e
        if spec is None or not spec.origin:
            raise PluginError(f"task package {name!r} ({origin}) failed to import: ModuleNotFoundError: No module named {name!r}")
        d = Path(spec.origin).resolve().parent / "conf"
        if d.is_dir():
            out.append(d)
    return out
