"""One small registry class, instantiated once per kind (ops, spaces, strategies, tasks,
model builders, fine-tuners, hub facts, ecosystem bridges).

Adding an entry is one decorated definition in one file; the registry imports every
module of its package on first lookup, so no central list has to be edited. Registries
that tasks fill (``plugins=True``) also load the task packages (:mod:`zoo.plugins`) first,
so a registry spans the core and the tasks without the core naming a task.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered; its message is one line naming what is allowed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to objects of one kind.

    `package`, when given, is imported module by module before the first lookup so
    that every entry defined in it registers itself; `plugins` adds the task packages
    (a module name, e.g. ``"hub"``: only that module of the packages that list their
    modules, :func:`zoo.plugins.load_plugins`).
    """

    def __init__(self, kind: str, package: str | None = None, plugins: bool | str = False) -> None:
        self.kind = kind
        self.package = package
        self.plugins = plugins
        self._entries: dict[str, T] = {}
        self._loaded = package is None and not plugins

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            self._import_entries()
        except BaseException:
            self._loaded = False  # a failed load is tried again (and fails again) rather than serving a partial registry
            raise

    def _import_entries(self) -> None:
        if self.package is not None:
            pkg = importlib.import_module(self.package)
            for mod in pkgutil.iter_modules(pkg.__path__):
                if not mod.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{mod.name}")
        if self.plugins:
            from zoo.plugins import load_plugins

            load_plugins(None if self.plugins is True else self.plugins)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._entries.items())


def build(registry: Registry[Any], name: str, *args: Any, **kwargs: Any) -> Any:
    return registry.get(name)(*args, **kwargs)
