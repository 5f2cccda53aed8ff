"""NAS-Bench-201 space and tabular estimator: genotype text/JSON round trips, the trainable
network, and table look-ups checked against the facts in ../shared/benchmarks/README.md."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from zoo.estimate.base import ESTIMATORS
from zoo.estimate.nb201 import BenchmarkNotFoundError, NB201Estimator, find_root, load_tables
from zoo.space.base import SPACES
from zoo.space.genotype import GenotypeError, genotype_from_json, genotype_key
from zoo.space.nb201 import NB201Genotype, NB201Network, NB201Space, nb201_param_count

ROOT = Path(__file__).resolve().parent.parent
TABLES = ROOT.parent / "shared" / "benchmarks" / "nb201"
ARCH_9930 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def estimator(**kw: object) -> NB201Estimator:
    assert (TABLES / "minibench_12ep").is_dir(), f"NAS-Bench-201 tables missing at {TABLES} (CI provides ../shared/benchmarks)"
    return NB201Estimator(OmegaConf.create({"name": "nb201", "root": str(TABLES), "dataset": "cifar10", "latency_device": "gold_6240", **kw}))


# ---------------------------------------------------------------- genotype
def test_arch_string_and_json_round_trip() -> None:
    g = NB201Genotype.from_arch_str(ARCH_9930)
    assert g.to_arch_str() == ARCH_9930 and str(g) == ARCH_9930
    assert g.edge(0, 3) == "skip_connect" and g.edge(2, 3) == "nor_conv_3x3"
    back = genotype_from_json(json.loads(json.dumps(g.to_json())))
    assert back == g and hash(back) == hash(g) and genotype_key(back) == genotype_key(g)
    assert NB201Genotype.from_json({"space": "nb201", "ops": list(g.ops)}) == g
    space = SPACES.get("nb201")()
    for x in ([0] * 6, [4, 3, 2, 1, 0, 4], [1, 2, 3, 4, 0, 1]):
        assert space.encode(space.decode(x)) == x
        h = space.decode(x)
        assert NB201Genotype.from_arch_str(h.to_arch_str()) == h
    assert space.size() == 15625 and len(space.neighbours(g)) == 24


@pytest.mark.parametrize(
    "text, words",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "2 node block"),
        ("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_9x9'"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "exactly once"),
        ("|none~0|+|none~0|none1|+|none~0|none~1|none~2|", "op~input"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end"),
    ],
)
def test_bad_arch_strings_fail_in_one_line(text: str, words: str) -> None:
    with pytest.raises(GenotypeError) as e:
        NB201Genotype.from_arch_str(text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_op_in_json_genotype() -> None:
    with pytest.raises(GenotypeError, match="unknown op 'sep_conv_3x3'; allowed: none, skip_connect"):
        genotype_from_json({"space": "nb201", "ops": ["sep_conv_3x3"] + ["none"] * 5})
    with pytest.raises(GenotypeError, match="'arch'"):
        genotype_from_json({"space": "nb201"})


# ---------------------------------------------------------------- network
def test_network_trains_and_matches_the_published_size(one_thread: None) -> None:
    torch.manual_seed(0)
    g = NB201Genotype.from_arch_str(ARCH_9930)
    net = NB201Network(g)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
        opt.step()
        losses.append(loss.item())
    assert net(x).shape == (4, 10) and losses[-1] < losses[0]
    # counted params == built params, for several cells
    for arch in (ARCH_9930, ALL_SKIP, "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"):
        c = NB201Genotype.from_arch_str(arch)
        assert nb201_param_count(c) == sum(p.numel() for p in NB201Network(c).parameters())
    # NAS-Bench-201's largest CIFAR-10 network (every edge nor_conv_3x3) is listed as 1.53 MB of parameters;
    # cells without convolutions leave the skeleton alone (stem, two ResNet blocks, final BN, classifier)
    assert nb201_param_count(NB201Genotype(("nor_conv_3x3",) * 6)) == 1_531_546
    assert nb201_param_count(NB201Genotype(("none",) * 6)) == 73_306
    assert nb201_param_count(NB201Genotype(("nor_conv_3x3",) * 6), num_classes=100) == 1_531_546 + 90 * 65


# ---------------------------------------------------------------- tables
def test_table_lookups_match_the_benchmark_readme() -> None:
    est = estimator()
    assert ESTIMATORS.get("nb201") is NB201Estimator and NB201Estimator.tabular and not NB201Estimator.needs_task
    g = NB201Genotype.from_arch_str(ARCH_9930)
    r = est(g)
    assert r["nb201_index"] == 9930 and r["reward"] == r["val_acc_12ep"]
    assert 80 < r["reward"] < 90  # 12-epoch numbers (max 12-epoch CIFAR-10 test in this table: 89.16)
    t = est.tables.acc["CIFAR10TestAccuracy200Epochs"]
    assert t.max() == pytest.approx(94.3733, abs=1e-4)
    assert sorted(np.flatnonzero(np.isclose(t, t.max()))) == [6111, 13714]
    skip = est.final(NB201Genotype.from_arch_str(ALL_SKIP))
    assert skip["nb201_index"] == 1835 and skip["test_acc_200ep"] == pytest.approx(54.2967, abs=1e-4)
    best = est.final(NB201Genotype.from_arch_str(est.tables.arch[6111]))
    assert best["test_acc_200ep"] == pytest.approx(94.3733, abs=1e-4)
    assert est.tables.acc["cifar10-test"].max() == pytest.approx(89.16, abs=1e-2)
    f = est.final(g)
    assert set(f) >= {"val_acc_12ep", "test_acc_12ep", "test_acc_200ep", "latency_ms", "params"}
    assert f["params"] == 1_288_506 and f["latency_ms"] > 0
    # the CIFAR-100 optimum sits at 9930 (README)
    e100 = estimator(dataset="cifar100")
    assert e100.final(g)["test_acc_200ep"] == pytest.approx(73.5133, abs=1e-4)
    # latency device column: HELP/HW-NAS-Bench row 0 on raspi4 (README)
    raspi = estimator(latency_device="raspi4")
    assert raspi(NB201Genotype.from_arch_str(est.tables.arch[0]))["latency_ms"] == pytest.approx(10.481976820010459)
    assert load_tables(TABLES) is est.tables  # parsed once per process


def test_bad_estimator_config_and_missing_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"estimate.latency_device='tpu_v9' is invalid; allowed: .*gold_6240"):
        estimator(latency_device="tpu_v9")
    with pytest.raises(ValueError, match="estimate.dataset='mnist' is invalid"):
        estimator(dataset="mnist")
    with pytest.raises(BenchmarkNotFoundError) as e:
        find_root(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("ZOO_NB201_ROOT", str(tmp_path))
    with pytest.raises(BenchmarkNotFoundError, match="ZOO_NB201_ROOT"):
        find_root(None)
    monkeypatch.setenv("ZOO_NB201_ROOT", str(TABLES.parent))  # the benchmarks folder is accepted too
    assert find_root(None) == TABLES.resolve()
    monkeypatch.delenv("ZOO_NB201_ROOT")
    monkeypatch.chdir(tmp_path)  # default search also walks up from the package: finds ../shared beside the repo
    assert find_root(None).resolve() == TABLES.resolve()
    with pytest.raises(ValueError, match="space=nb201 cells only"):
        estimator()(SPACES.get("darts")().sample(np.random.default_rng(0)))


def test_tables_are_not_shipped_in_the_package() -> None:
    shipped = [p for d in ("zoo", "tasks", "conf") for p in (ROOT / d).rglob("*") if p.suffix in (".csv", ".pd", ".pt", ".pickle")]
    assert shipped == []
    assert "csv" not in (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[-1]


def test_nb201_genotype_draws(tmp_path: Path) -> None:
    from zoo.plots import plot_genotype

    plot_genotype(NB201Genotype.from_arch_str(ARCH_9930), tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 5000


def test_space_rejects_other_ops() -> None:
    with pytest.raises(ValueError, match="fixed op set"):
        NB201Space(ops=["none", "sep_conv_3x3"])
