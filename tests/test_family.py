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
from zoo.constraints import Family
from zoo.family import run_family
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


def test_a_family_writes_each_member_beside_its_same_size_baseline_and_resumes_at_a_member(tmp_path: Path) -> None:
    cfg = compose_config([*TINY, "family.params=[60k,15k]"])
    family = Family.from_cfg(cfg)
    assert family is not None and family.targets == (15_000.0, 60_000.0)
    out = run_family(cfg, tmp_path, family)
    rows = json.loads((tmp_path / "frontier.json").read_text())
    assert [r["label"] for r in rows] == ["params-15k", "params-60k"] == [r["label"] for r in out["members"]]
    for row, limit in zip(rows, (15_000, 60_000)):
        m = json.loads((tmp_path / "members" / row["label"] / "metrics.json").read_text())
        assert m["params"] <= limit and m["constraints"]["params"] == {"limit": limit, "final": m["params"], "met": True}
        assert abs(m["params_baseline"] - m["params"]) <= 0.1 * m["params"]  # the hand-made model of the same size
        assert row["params"] == m["params"] and row["score"] == m["score"] and row["baseline"]["score"] == m["score_baseline"]
        assert row["searched_minus_baseline"] == m["score"] - m["score_baseline"] and row["latency_ms"] > 0
    assert rows[0]["params"] < rows[1]["params"]
    assert Image.open(tmp_path / "frontier.png").size[0] > 600  # two panels: against parameters and against latency

    # killed while retraining the second member: its metrics and the family's are not written yet
    first = tmp_path / "members" / "params-15k" / "metrics.json"
    stamp = first.stat().st_mtime_ns
    before = json.loads((tmp_path / "members" / "params-60k" / "metrics.json").read_text())
    os.remove(tmp_path / "members" / "params-60k" / "metrics.json")
    os.remove(tmp_path / "metrics.json")
    cfg.resume = True
    again = run_family(cfg, tmp_path, family)
    assert first.stat().st_mtime_ns == stamp  # the finished member was not retrained
    after = json.loads((tmp_path / "members" / "params-60k" / "metrics.json").read_text())
    assert after["genotype"] == before["genotype"] and after["params"] == before["params"]
    assert after["test_accuracy"] == before["test_accuracy"]  # retrained to the same model
    assert [r["label"] for r in again["members"]] == ["params-15k", "params-60k"]


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


def test_the_cli_runs_a_family_and_a_finished_one_only_reports(tmp_path: Path, zoo_cli: ZooCli) -> None:
    run = tmp_path / "run"
    out = zoo_cli.run(*TINY, "family.params=[15k,60k]", "threads=1", run_dir=run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "zoo family finished" in out.stdout and "params-15k" in out.stdout and (run / "frontier.png").is_file()
    assert sorted(p.name for p in (run / "members").iterdir()) == ["params-15k", "params-60k"]
    stamp = (run / "members" / "params-60k" / "model.safetensors").stat().st_mtime_ns
    again = zoo_cli.run(*TINY, "family.params=[15k,60k]", "threads=1", "resume=true", run_dir=run)
    assert again.returncode == 0 and "params-60k" in again.stdout, again.stderr[-3000:]
    assert (run / "members" / "params-60k" / "model.safetensors").stat().st_mtime_ns == stamp  # nothing ran again
