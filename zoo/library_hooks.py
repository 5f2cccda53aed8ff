"""Library hooks: ecosystem bridges that run as soon as their library is imported.

Bridges (:data:`zoo.hub.facts.BRIDGES`) run when their library is imported, in whichever order the
user imports it and zoo: ``import zoo`` then ``from transformers import AutoModelForSeq2SeqLM``
finds zoo's model types registered, as a library's own Auto classes would be, and nothing
imports the library before the user (or a run that needs it) does. ``import zoo`` installs the hook.
The same hook runs zoo's own set-up for a library when it is imported (:func:`on_import`: the
OmegaConf resolver of the run directory's name), so ``import zoo`` imports none of them.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from zoo.plugins import loading, plugin_initializing

LIBRARY_BRIDGES = ("transformers",)
_ON_IMPORT: dict[str, list[Callable[[], None]]] = {}  # library -> zoo's set-up to run once it is imported


def _run_bridge(name: str) -> None:
    if loading() or plugin_initializing():
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
        if fullname not in LIBRARY_BRIDGES and fullname not in _ON_IMPORT:
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
            for fn in _ON_IMPORT.get(fullname, ()):
                fn()
            if fullname in LIBRARY_BRIDGES:
                _run_bridge(fullname)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def on_import(library: str, fn: Callable[[], None]) -> None:
    """Runs ``fn`` once ``library`` is imported: now if it is already, else right after its import."""
    if library in sys.modules:
        fn()
    else:
        _ON_IMPORT.setdefault(library, []).append(fn)


def install_library_hooks() -> None:
    """Called by ``import zoo``: bridges of libraries imported already run now, the others on their import."""
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
    for name in LIBRARY_BRIDGES:
        if name in sys.modules:
            _run_bridge(name)
