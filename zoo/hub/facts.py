"""What the hub needs to know per task, keyed by the bundle's ``task`` name.

A task plugs into the hub with one :class:`HubFacts` subclass registered in :data:`HUB_FACTS`
under its task name (``@HUB_FACTS.register("name")`` in ``tasks/<name>/hub.py``): how its
inputs are prepared (written into ``config.json`` and the model card), an example input for
export and parity checks, the module that is exported with its output names, the headline
metric of ``python -m zoo.hub list``, the usage section of its model card, whether the
timm registry can serve it, and the architecture-only registry entries of its published
architectures. A bundle of a task without facts still saves, loads and gets a card.

:data:`BRIDGES` holds the ecosystem bridges tasks register by library name (``timm``, ...),
so ``zoo.register_timm()`` reaches classification's bridge without the core importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoo.registry import Registry

if TYPE_CHECKING:  # torch is imported where a tensor is made: `python -m zoo.hub list` reads these facts without it
    import torch
    from torch import nn


class HubFacts:
    """Defaults for a task with image input; subclasses override what differs."""

    name = "abstract"
    timm = False  # served by timm.create_model("zoo_NAME")
    export_rtol = 0.0  # export check tolerance: atol + export_rtol * (each output's largest magnitude)

    def preprocessing(self, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def input_shape(self, config: dict[str, Any]) -> tuple[int, ...]:
        raise NotImplementedError(f"task {self.name!r} does not describe its input for export yet")

    def example_input(self, config: dict[str, Any], batch: int = 2, seed: int = 0, size: Sequence[int] | None = None) -> torch.Tensor:
        """A random batch in [0, 1]; ``size`` (H, W) replaces the recorded spatial size."""
        shape = self.input_shape(config)
        if size is not None:
            shape = (*shape[:-2], *(int(v) for v in size))
        import torch

        g = torch.Generator().manual_seed(seed)
        return torch.rand((batch, *shape), generator=g)

    def export_module(self, model: nn.Module) -> nn.Module:
        """What is exported: the model itself unless its forward returns more than plain tensors."""
        return model

    def output_names(self) -> list[str]:
        return ["output"]

    def metrics_note(self) -> str:
        """The model card's line under "Metrics": what the metrics were measured on."""
        return "Measured on the held-out test split, never seen by the search or training."

    def card_results(self, config: dict[str, Any]) -> list[str]:
        """Markdown lines the model card shows after its metrics table (e.g. sample outputs); none by default."""
        return []

    def headline(self, metrics: dict[str, Any]) -> str | None:
        """The one metric ``python -m zoo.hub list`` shows for an entry, or ``None`` (the first number is shown)."""
        return None

    def card_usage(self, ref: str) -> list[str]:
        """Markdown lines of the model card's fine-tune / export instructions for the bundle ``ref``."""
        return ["Export:", "", "```bash", f"python -m zoo.hub export {ref} --format onnx", "```", ""]

    def published_entries(self) -> list[dict[str, Any]]:
        """Architecture-only registry entries of the task's published architectures (what their papers
        report, no weights), which ``scripts/zoo_published_entries.py`` writes into ``zoo/hub/registry.json``."""
        return []


HUB_FACTS: Registry[type[HubFacts]] = Registry("hub facts", plugins="hub")  # each task's hub.py alone
BRIDGES: Registry[Any] = Registry("ecosystem bridge", plugins=True)  # library name -> register function


def hub_facts(name: str | None) -> HubFacts:
    """The hub facts of a task; unknown tasks get the generic ones (bundles still save/load)."""
    if name and name in HUB_FACTS:
        return HUB_FACTS.get(name)()
    return HubFacts()
