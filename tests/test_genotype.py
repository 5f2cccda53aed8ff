"""Genotype round trips (JSON and the DARTS text form) and clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zoo.space import SPACES, Genotype, GenotypeError, genotype_from_json, load_genotype
from zoo.space.genotype import genotype_key
from zoo.space.published import PUBLISHED

DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_round_trips(name: str) -> None:
    g = PUBLISHED[name]
    assert genotype_from_json(json.loads(json.dumps(g.to_json()))) == g
    assert Genotype.from_text(g.to_text()) == g
    assert hash(Genotype.from_text(g.to_text())) == hash(g)


def test_reads_darts_text_form_with_range_and_lists() -> None:
    g = Genotype.from_text(DARTS_V2_TEXT)
    assert g == PUBLISHED["darts_v2"]
    with_range = DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert Genotype.from_text(with_range) == g
    assert "normal_concat=range(2, 6)" in g.to_text()


def test_random_genotypes_round_trip_and_hash_consistently() -> None:
    space = SPACES.get("darts")()
    rng = np.random.default_rng(1)
    seen = {}
    for _ in range(50):
        g = space.sample(rng)
        back = genotype_from_json(json.loads(json.dumps(g.to_json())))
        assert back == g and hash(back) == hash(g) and genotype_key(back) == genotype_key(g)
        assert Genotype.from_text(str(g)) == g
        assert space.decode(space.encode(g)) == g
        seen[g] = True
    assert len(seen) == 50  # distinct samples hash distinctly


def test_text_form_is_parsed_without_evaluating_code() -> None:
    with pytest.raises(GenotypeError, match="not a literal"):
        Genotype.from_text("Genotype(normal=__import__('os').getcwd(), normal_concat=[2], reduce=[], reduce_concat=[2])")
    with pytest.raises(GenotypeError, match="Genotype"):
        Genotype.from_text("print('hi')")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"space": "darts", "normal": []}', "missing field"),
        ('{"space": "nope"}', "field 'space' is 'nope'"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_corrupted_genotype_json_is_one_clear_line(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "genotype.json"
    path.write_text(content)
    with pytest.raises(GenotypeError) as e:
        load_genotype(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_genotype_with_unknown_op_or_bad_input_is_rejected(tmp_path) -> None:
    data = PUBLISHED["darts_v2"].to_json()
    data["normal"][3] = ["sep_conv_9x9", 1]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GenotypeError, match=r"normal\[3\] has unknown op 'sep_conv_9x9'"):
        load_genotype(path)
    data = PUBLISHED["darts_v2"].to_json()
    data["reduce"][0] = ["max_pool_3x3", 5]
    path.write_text(json.dumps(data))
    with pytest.raises(GenotypeError, match=r"reduce\[0\] input 5 is out of range for node 0"):
        load_genotype(path)
    with pytest.raises(GenotypeError, match="does not exist"):
        load_genotype(tmp_path / "missing.json")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_drawn_cells_have_no_overlapping_op_labels(name: str, tmp_path) -> None:
    """The labels of genotype.png are measured in the rendered figure: no two op labels overlap."""
    import matplotlib.pyplot as plt

    from zoo.plots import _draw_cell

    g = PUBLISHED[name]
    for edges, concat in ((g.normal, g.normal_concat), (g.reduce, g.reduce_concat)):
        fig, ax = plt.subplots(figsize=(9, 3.5), dpi=110)
        _draw_cell(ax, edges, concat, "cell")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts if t.get_text() in {op for op, _ in edges}]
        plt.close(fig)
        assert len(boxes) == len(edges)
        overlaps = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
        assert not overlaps, (name, [(edges[i][0], edges[j][0]) for i, j in overlaps])
