"""Model families (zoo/family.py): one search, then per target the best architecture fitted to it, retrained beside
the hand-made model of the same size; frontier.json / frontier.png; a killed family run resumes at its member."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.cli import ZooCli
from PIL import Image

from zoo.__main__ import compose_config
from zoo.config_values import ConfigError
from zoo.pipeline import build_checks

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=classification",
    "data=digits",
    "data.test_fraction=0.8",
    "search=random",
    "search.budget=3",
    "trainer.estimate_epochs=1",
    "trainer.epochs=1",
    "progress=false",
]


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["family.params=[]"], "family.params=[] is invalid; allowed: a non-empty list of positive counts"),
        (["family.params=[abc,2M]"], "family.params=['abc', '2M'] is invalid"),
        (["family.params=[1M,1M]"], "each once"),
        (["family.latency_ms=[0,3]"], "family.latency_ms=[0, 3] is invalid; allowed: a non-empty list of numbers > 0"),
        (["family.params=[1M]", "family.latency_ms=[3]"], "are both set"),
        (["family.params=[1M]", "constraints.params=2M"], "family.params is invalid with constraints (constraints.params=2M)"),
    ],
)
def test_bad_families_fail_in_one_line_before_any_work(overrides: list[str], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        build_checks(compose_config(["task=classification", "search=random", *overrides]))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_family_writes_each_member_beside_its_same_size_baseline_and_resumes_at_a_member(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    args = [*TINY, "family.params=[60k,15k]", "threads=1"]
    out = zoo_cli.run(*args, run_dir=run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "zoo family finished" in out.stdout and "params-15k" in out.stdout
    rows = json.loads((run / "frontier.json").read_text())
    assert [r["label"] for r in rows] == ["params-15k", "params-60k"]  # smallest first
    for row, limit in zip(rows, (15_000, 60_000)):
        m = json.loads((run / "members" / row["label"] / "metrics.json").read_text())
        assert m["params"] <= limit and m["constraints"]["params"] == {"limit": limit, "final": m["params"], "met": True}
        assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"]  # the hand-made model of the same size
        assert row["params"] == m["params"] and row["score"] == m["score"] and row["baseline"]["score"] == m["score_baseline"]
        assert row["searched_minus_baseline"] == m["score"] - m["score_baseline"] and row["latency_ms"] > 0
    assert rows[0]["params"] < rows[1]["params"]
    assert Image.open(run / "frontier.png").size[0] > 600  # two panels: against parameters and against latency

    # killed while retraining the second member: its metrics and the family's are not written yet
    first = run / "members" / "params-15k" / "metrics.json"
    stamp = first.stat().st_mtime_ns
    before = json.loads((run / "members" / "params-60k" / "metrics.json").read_text())
    os.remove(run / "members" / "params-60k" / "metrics.json")
    os.remove(run / "metrics.json")
    again = zoo_cli.run(*args, "resume=true", run_dir=run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert first.stat().st_mtime_ns == stamp  # the finished member was not retrained
    after = json.loads((run / "members" / "params-60k" / "metrics.json").read_text())
    assert after["genotype"] == before["genotype"] and after["params"] == before["params"]
    assert after["test_accuracy"] == before["test_accuracy"]  # retrained to the same model

    # resumed once more, the finished family only reports its table
    stamp = (run / "members" / "params-60k" / "model.safetensors").stat().st_mtime_ns
    done = zoo_cli.run(*args, "resume=true", run_dir=run)
    assert done.returncode == 0 and "params-60k" in done.stdout, done.stderr[-3000:]
    assert (run / "members" / "params-60k" / "model.safetensors").stat().st_mtime_ns == stamp  # nothing ran again
