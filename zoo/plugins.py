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
import importlib.abc
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

BUNDLED = ("tasks",)  # the task packages shipped with zoo: every sub-package is one task
ENTRY_POINT_GROUP = "zoo.plugins"  # downstream: [project.entry-points."zoo.plugins"] name = "pkg.task_module"

_loaded: list[ModuleType] | None = None


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
    global _loaded
    if _loaded is not None:
        return _loaded
    _loaded = []  # set first: a registry looked up while a plug-in is being imported sees what is registered so far
    try:
        mods = _bundled()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            mods.append(_import(ep.value.partition(":")[0], f"entry point {ENTRY_POINT_GROUP}:{ep.name}"))
    except PluginError:
        _loaded = None  # the next lookup fails the same way instead of going on with some tasks missing
        raise
    _loaded.extend(mods)
    return _loaded


def conf_dirs() -> list[Path]:
    """Each plug-in's Hydra config folder (``<package>/conf``), added to the config search path."""
    out = []
    for mod in load_plugins():
        d = Path(mod.__file__).resolve().parent / "conf"  # type: ignore[arg-type]
        if d.is_dir():
            out.append(d)
    return out


# ---------------------------------------------------------------- library hooks
# Bridges (zoo.hub.facts.BRIDGES) run as soon as their library is imported, in whichever order the
# user imports it and zoo: ``import zoo`` then ``from transformers import AutoModelForSeq2SeqLM``
# finds zoo's model types registered, as a library's own Auto classes would be.
LIBRARY_BRIDGES = ("transformers",)


def _run_bridge(name: str) -> None:
    if _loaded is not None and len(_loaded) == 0:
        return  # the task packages are being imported right now: the bridge's own module registers itself when used
    from zoo.hub.facts import BRIDGES

    try:
        if name in BRIDGES:
            BRIDGES.get(name)()
    except Exception as e:  # a broken bridge must not break the user's import of the library
        import warnings

        warnings.warn(f"zoo: the {name} bridge failed to register: {type(e).__name__}: {e}", stacklevel=2)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the library's bridge right after the library's top-level module has executed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in LIBRARY_BRIDGES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _run_bridge(fullname)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_library_hooks() -> None:
    """Called by ``import zoo``: bridges of libraries imported already run now, the others on their import."""
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
    for name in LIBRARY_BRIDGES:
        if name in sys.modules:
            _run_bridge(name)
