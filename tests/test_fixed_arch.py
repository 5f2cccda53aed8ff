"""search=fixed takes every form of architecture the README names, and refuses the rest in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.atomic import save_json_atomic
from zoo.config_values import ConfigError
from zoo.models import PUBLISHED
from zoo.search.fixed import Fixed, resolve_arch
from zoo.space.darts_space import DartsSpace
from zoo.space.genotype import GenotypeError


def test_every_form_resolves_to_the_same_cell(tmp_path: Path) -> None:
    g = PUBLISHED["darts_v2"]
    text = str(g)
    assert len(text) > 255  # longer than a file name may be: must not be treated as a path
    run = tmp_path / "run"
    run.mkdir()
    save_json_atomic(run / "genotype.json", g.to_json())
    for arch in ("darts_v2", "DARTS-V2", text, str(run), str(run / "genotype.json")):
        assert resolve_arch(arch) == g, arch


def test_a_zoo_entry_gives_its_recorded_genotype() -> None:
    from zoo.hub.registry import get_entry
    from zoo.space.genotype import genotype_from_json

    assert resolve_arch("digits-darts") == genotype_from_json(get_entry("digits-darts").model["arch"])


@pytest.mark.parametrize(
    "arch, message",
    [
        ("darts_v9", "search.arch='darts_v9' is unknown; allowed: a published name"),
        ("/nope/cell.json", "search.arch=/nope/cell.json does not exist"),
        ("Genotype(normal=[('conv_9x9', 0)])", ""),
    ],
)
def test_bad_architectures_are_one_line(arch: str, message: str) -> None:
    with pytest.raises((ConfigError, GenotypeError)) as err:
        resolve_arch(arch)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_architecture_of_another_space_is_refused_before_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^search.arch is a 'detection' genotype, but space=darts"):
        Fixed(arch="trees-fpn-darts").check_space(DartsSpace())
    with pytest.raises(GenotypeError, match="3 nodes per cell|nodes"):
        Fixed(arch="darts_v2").check_space(DartsSpace(steps=3))
    Fixed(arch="darts_v2").check_space(DartsSpace())  # fits
