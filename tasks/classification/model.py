"""Classification's model: the stacked DARTS cell network (:class:`zoo.space.network.CellNetwork`),
with the input normalisation in front when the bundle records ``mean``/``std``.

Its builder is registered like every task's, under ``classification``, and claims the DARTS cell
genotype (``space=darts``, a core class that names no task): ``zoo.create_model("darts_v2", ...)``
and a bundle of a task with no builder of its own build the cell network.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.models import Normalize, model_builder
from zoo.space.genotype import Genotype, GenotypeError
from zoo.space.network import CellNetwork


@model_builder("classification", genotypes=("darts",))
def create_cell_network(arch: Any, mean: list[float] | None = None, std: list[float] | None = None, **kwargs: Any) -> nn.Module:
    """The discrete cell network of a DARTS genotype; keyword arguments go to :class:`CellNetwork`, whose defaults
    are the CIFAR-10 evaluation network (``num_classes``, ``init_channels``, ``layers``, ``auxiliary``,
    ``in_chans``, ``stem``, ``drop_path_prob``, ``stem_multiplier``, ``num_reductions``)."""
    genotype = Genotype.from_json(arch) if isinstance(arch, dict) else arch
    if not isinstance(genotype, Genotype):
        raise GenotypeError(
            f"the cell network builds DARTS cell genotypes (space=darts), got a {getattr(genotype, 'space', type(genotype).__name__)!r} genotype"
        )
    net = CellNetwork(genotype, **kwargs)
    if mean is not None and std is not None:
        return NormalizedModel(Normalize(mean, std), net)
    return net


class NormalizedModel(nn.Module):
    """A normalisation layer in front of a cell network; forwards the network's attributes."""

    def __init__(self, normalize: nn.Module, net: CellNetwork) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    @property
    def drop_path_prob(self) -> float:
        return self.net.drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        self.net.drop_path_prob = p

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """The network's stages, with module names relative to this wrapper (``net.cells.N``)."""
        return [{**f, "module": f"net.{f['module']}"} if "module" in f else dict(f) for f in self.net.feature_info]

    def forward_features(self, x: Any) -> Any:
        return self.net.forward_features(self.normalize(x))

    def forward(self, x: Any) -> Any:
        return self.net(self.normalize(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)
