"""Model families (zoo/family.py): one search, then per target the best architecture fitted to it, retrained beside
the hand-made model of the same size; frontier.json / frontier.png; a killed family run resumes at its member."""

from __future__ import annotations

import contextlib
import io
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
        (["family.latency_ms=[inf]"], "family.latency_ms=[inf] is invalid"),
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


def test_a_family_is_pushed_as_one_entry_per_size_listed_together_and_loads_by_name(
    tmp_path: Path, zoo_cli: ZooCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hub push`` of a family run: ``NAME-s`` and ``NAME-l`` (smallest first), each card holding the frontier plot and
    table; ``hub list`` shows them together under the family; ``zoo.create_model("NAME-l", pretrained=True)`` loads the
    large member's weights."""
    import torch

    import zoo
    from zoo.hub.__main__ import main as hub_main
    from zoo.hub.bundle import load_bundle
    from zoo.hub.publish import push_family

    run = tmp_path / "run"
    out = zoo_cli.run(*TINY, "family.params=[15k,60k]", "threads=1", run_dir=run)
    assert out.returncode == 0, out.stderr[-3000:]
    served = tmp_path / "served"
    pushed = push_family(run, str(served), name="digits-fam")
    assert [e["name"] for e, _ in pushed] == ["digits-fam-s", "digits-fam-l"] and all(e["family"] == "digits-fam" for e, _ in pushed)
    card = (served / "digits-fam-l" / "README.md").read_text()
    assert (
        "![searched vs hand-made](frontier.png)" in card
        and "| digits-fam-s |" in card
        and (served / "digits-fam-l" / "frontier.png").is_file()
    )
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_REGISTRY", str(served / "registry.json"))
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        hub_main(["list", "--task", "classification"])
    lines = [line for line in text.getvalue().splitlines() if line.startswith("digits-fam-")]
    assert [line.split()[0] for line in lines] == ["digits-fam-s", "digits-fam-l"] and all(
        line.split()[-1] == "digits-fam" for line in lines
    )
    model = zoo.create_model("digits-fam-l", pretrained=True)
    shipped, _ = load_bundle(run / "members" / "params-60k")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
