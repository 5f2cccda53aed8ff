"""search.seed_arch: regularized evolution warm-started from a known architecture (the Evolved Transformer's seeding)."""

from __future__ import annotations

import pytest

from zoo.search import STRATEGIES, ConfigError
from zoo.space import SPACES
from zoo.space.published import DARTS_V2


def _distance(space, a, b) -> int:
    return sum(x != y for x, y in zip(space.encode(a), space.encode(b)))


def test_first_population_is_the_seed_and_its_mutations_then_evolution_goes_on() -> None:
    space = SPACES.get("darts")()
    evo = STRATEGIES.get("evolution")(space, budget=12, seed=0, population_size=5, sample_size=2, mutations=1, seed_arch="darts_v2")
    asked = []
    while not evo.done:
        (g,) = evo.ask()
        asked.append(g)
        evo.tell(g, {"reward": float(sum(op == "sep_conv_3x3" for op, _ in g.normal))})
    assert asked[0] == DARTS_V2
    assert all(_distance(space, g, DARTS_V2) == 1 for g in asked[1:5]), "the rest of the first population are one-decision mutations"
    assert len({str(g) for g in asked}) == len(asked)
    unseeded = STRATEGIES.get("evolution")(space, budget=12, seed=0, population_size=5, sample_size=2)
    first = unseeded.ask()[0]
    assert _distance(space, first, DARTS_V2) > 3  # without a seed the first population is uniform samples


@pytest.mark.parametrize(
    ("seed_arch", "expect"),
    [
        ("no_such_net", "search.seed_arch='no_such_net' is unknown; allowed:"),
        ("autodeeplab", "search.seed_arch=autodeeplab: it is a 'segmentation' genotype, not one of space 'darts'"),
    ],
)
def test_a_bad_seed_fails_in_one_line(seed_arch: str, expect: str) -> None:
    with pytest.raises(ConfigError) as e:
        STRATEGIES.get("evolution")(SPACES.get("darts")(), budget=12, population_size=5, seed_arch=seed_arch)
    assert str(e.value).startswith(expect) and "\n" not in str(e.value), str(e.value)
