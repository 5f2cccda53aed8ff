"""The shared cell search space: ops, genotypes, cells, networks and supernets."""

from zoo.space.base import SPACES, SearchSpace
from zoo.space.genotype import Genotype, GenotypeError, genotype_from_json, load_genotype
from zoo.space.ops import DARTS_OPS, NB201_OPS, OPS

__all__ = [
    "SPACES",
    "SearchSpace",
    "Genotype",
    "GenotypeError",
    "genotype_from_json",
    "load_genotype",
    "OPS",
    "DARTS_OPS",
    "NB201_OPS",
]
