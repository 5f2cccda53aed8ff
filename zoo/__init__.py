"""zoo: task-specific neural architecture search and a zoo of searched models."""

from __future__ import annotations

from typing import Any

from zoo.version import __version__


def _register_resolvers() -> None:
    """The run directory's name (zoo/conf/config.yaml, hydra.run.dir): TASK-SEARCH, or TASK-finetune."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver(
        "zoo_run_name", lambda mode, task, search: f"{task}-finetune" if mode == "finetune" else f"{task}-{search}", replace=True
    )


def __getattr__(name: str) -> Any:
    """``zoo.list_models`` and ``zoo.Genotype``, imported on first use: ``import zoo`` (and the
    command lines, ``python -m zoo.hub list``) do not import torch until something needs it."""
    if name == "list_models":
        from zoo.models import list_models

        return list_models
    if name == "Genotype":
        from zoo.space.genotype import Genotype

        return Genotype
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def create_model(arch: Any, pretrained: bool = False, **kwargs: Any) -> Any:
    """A model from a published genotype name, a zoo entry name or a genotype.

    ``pretrained=True`` loads a zoo entry's weights (fetched into the cache, sha256
    checked); see :func:`zoo.hub.api.create_model`.
    """
    from zoo.hub.api import create_model as _create

    return _create(arch, pretrained=pretrained, **kwargs)


def from_pretrained(path_or_name: str, **kwargs: Any) -> Any:
    """The ready model of a zoo name, a bundle directory (``config.json`` + ``model.safetensors``) or archive."""
    from zoo.hub.api import from_pretrained as _load

    return _load(path_or_name, **kwargs)


def register_timm(registry: Any = None) -> list[str]:
    """Registers the zoo entries timm can serve as ``zoo_NAME``; returns those names.

    The bridge is the one a task registered under ``timm`` (:data:`zoo.hub.facts.BRIDGES`)."""
    from zoo.hub.facts import BRIDGES

    return BRIDGES.get("timm")(registry)


from zoo.library_hooks import install_library_hooks, on_import  # noqa: E402

install_library_hooks()  # e.g. translators registered with transformers' Auto classes once transformers is imported
on_import("omegaconf", _register_resolvers)  # when Hydra or the user imports it: `import zoo` does not

__all__ = ["create_model", "list_models", "from_pretrained", "register_timm", "Genotype", "__version__"]
