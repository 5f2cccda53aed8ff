"""NAS-Bench-201 space and tabular estimator: genotype text/JSON round trips, the trainable
network, table look-ups checked against the facts in zoo/hub/releases/nb201/README.md, and the
tables as the zoo's ``nb201`` benchmark entry (shipped compressed, fetched into the cache)."""

from __future__ import annotations

import hashlib
import json
import lzma
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import ZooCli, one_error_line
from helpers.nb201_home import nb201_zoo_home  # noqa: F401  (ZOO_HOME: a cache private to the tests)
from omegaconf import OmegaConf

import zoo
from zoo.estimate.base import ESTIMATORS
from zoo.estimate.nb201 import HELP_LATENCY, MINI_12EP, NATS_200EP, BenchmarkNotFoundError, NB201Estimator, find_root, load_tables
from zoo.hub.api import entry_dir
from zoo.hub.download import HubError, sha256_file
from zoo.hub.registry import get_entry, load_entries
from zoo.space.base import SPACES
from zoo.space.genotype import GenotypeError, genotype_from_json, genotype_key
from zoo.space.nb201 import NB201Genotype, NB201Network, NB201Space, nb201_param_count

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "zoo" / "hub" / "releases" / "nb201"
# sha256 of the original CSVs (zoo/hub/releases/nb201/README.md): decompressed, the shipped files must equal them
CSV_SHA256 = {
    MINI_12EP: "dd03f9c5ffc3ad6fcc7abeae23c0844d840f0a65d243b01926dcd83ca5c93999",
    NATS_200EP: "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e",
    HELP_LATENCY: "c439000b222238b05ddf6dd212b4884a62d058a576dafa932842375468b20f40",
}
ARCH_9930 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def estimator(**kw: object) -> NB201Estimator:
    """estimate=nb201 as configured by default (root: null): the nb201 entry, fetched into ZOO_HOME on first use."""
    return NB201Estimator(OmegaConf.create({"name": "nb201", "root": None, "dataset": "cifar10", "latency_device": "gold_6240", **kw}))


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
    assert load_tables() is est.tables and load_tables(est.root) is est.tables  # parsed once per process


def test_bad_estimator_config_and_where_the_tables_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    monkeypatch.delenv("ZOO_NB201_ROOT")
    default = find_root(None)
    # tables kept elsewhere, in the benchmark's own layout as plain CSV: ZOO_NB201_ROOT (or
    # estimate.root) names the folder, or one holding benchmarks/nb201/
    mine = tmp_path / "data" / "benchmarks" / "nb201"
    for rel in CSV_SHA256:
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_bytes(lzma.decompress((default / (Path(rel).name + ".xz")).read_bytes()))
    monkeypatch.setenv("ZOO_NB201_ROOT", str(tmp_path / "data"))
    assert find_root(None) == mine.resolve()
    assert find_root(default) == default  # estimate.root wins over the variable
    plain, packed = load_tables(mine), load_tables(default)
    assert plain is not packed and plain.arch == packed.arch
    assert all(np.array_equal(plain.acc[k], packed.acc[k]) for k in packed.acc)
    assert np.array_equal(plain.latency("pixel3"), packed.latency("pixel3"))
    monkeypatch.delenv("ZOO_NB201_ROOT")
    # with neither, the nb201 entry in the zoo cache: a shared/benchmarks/nb201 near the working directory is never used
    stray = tmp_path / "x" / "shared" / "benchmarks" / "nb201"
    for rel in CSV_SHA256:
        (stray / rel).parent.mkdir(parents=True, exist_ok=True)
        (stray / rel).write_text("not,a,table\n")
    monkeypatch.chdir(stray)
    assert find_root(None) == entry_dir(get_entry("nb201", kind="benchmark")).resolve() == default
    with pytest.raises(ValueError, match="space=nb201 cells only"):
        estimator()(SPACES.get("darts")().sample(np.random.default_rng(0)))


def test_first_use_fetches_the_entry_into_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    root = find_root(None)
    entry = get_entry("nb201", kind="benchmark")
    assert root == (home / "hub" / "nb201" / entry.revision).resolve()
    assert sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) == sorted(f.name for f in entry.files)
    assert all(sha256_file(root / f.name) == f.sha256 for f in entry.files)
    # a damaged cached file fails its sha256 and is fetched again; a partial one is resumed
    mini = root / (Path(MINI_12EP).name + ".xz")
    mini.write_bytes(b"garbage")
    help_xz = root / (Path(HELP_LATENCY).name + ".xz")
    whole = help_xz.read_bytes()
    help_xz.unlink()
    (root / (help_xz.name + ".part")).write_bytes(whole[:100_000])
    assert find_root(None) == root
    assert sha256_file(mini) == next(f.sha256 for f in entry.files if f.name == mini.name)
    assert help_xz.read_bytes() == whole and not (root / (help_xz.name + ".part")).exists()
    # a registry whose nb201 files cannot be fetched: one line saying how to point at tables instead
    reg = json.loads((ROOT / "zoo" / "hub" / "registry.json").read_text())
    bad = dict(next(e for e in reg["entries"] if e["name"] == "nb201"))
    bad["files"] = [{**f, "urls": [str(tmp_path / "gone" / f["name"])]} for f in bad["files"]]
    bad["files"][0]["sha256"] = "0" * 64  # another revision: not in the cache yet
    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 1, "entries": [bad]}))
    monkeypatch.setenv("ZOO_REGISTRY", str(tmp_path / "bad.json"))
    with pytest.raises(BenchmarkNotFoundError) as e:
        find_root(None)
    msg = str(e.value)
    assert "\n" not in msg and "download failed" in msg and "estimate.root=DIR or ZOO_NB201_ROOT=DIR" in msg, msg


def test_tables_ship_compressed_and_decompress_to_the_original_csv() -> None:
    # no plain table anywhere in the packages; the nb201 entry's .csv.xz files are package data
    shipped = [p for d in ("zoo", "tasks") for p in (ROOT / d).rglob("*") if p.suffix in (".csv", ".pd", ".pt", ".pickle")]
    assert shipped == []
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["zoo"]
    entry = get_entry("nb201", kind="benchmark")
    readme = (RELEASE / "README.md").read_text()
    assert entry.data["csv_sha256"] == CSV_SHA256
    for f in entry.files:
        path = RELEASE / f.name
        assert Path(f.urls[0]) == path and path.stat().st_size == f.size and sha256_file(path) == f.sha256
        assert any(fnmatch(f"hub/releases/nb201/{f.name}", pat) for pat in patterns), f"{f.name} is not package data"
    for rel, digest in CSV_SHA256.items():
        data = lzma.decompress((RELEASE / (Path(rel).name + ".xz")).read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, rel  # byte-identical to the original CSV
        assert digest in readme and f"{len(data):,}" in readme
    for fact in (
        "MIT licence, Copyright (c) 2021 BayesWatch",
        "MIT licence, Copyright (c) 2024 HayeonLee",
        "v-tao/nats-bench-landscape",
        "b307ae5fe6e8d7043cd4fe7d1c3532288271adb7",
        "8c63c49988579e55145c6d0c19ba9d2ef9eb0afe",
        "45f70eb92d0d735970a33b608d1544ad3c52f285",
    ):
        assert fact in readme, fact


def test_the_tables_are_a_benchmark_entry_not_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.hub.__main__ import main

    entry = get_entry("nb201", kind="benchmark")
    assert entry.kind == "benchmark" and not entry.has_weights and entry.model == {}
    assert "nb201" not in load_entries() and "nb201" in load_entries(kind=None)  # model consumers (timm, ...) never see it
    for load in (
        lambda: zoo.create_model("nb201"),
        lambda: zoo.create_model("nb201", pretrained=True),
        lambda: zoo.from_pretrained("nb201"),
    ):
        with pytest.raises(HubError, match=r"^nb201 is a benchmark, not a model: it has no weights") as e:
            load()
        assert "\n" not in str(e.value)
    assert main(["list"]) == 0
    models, bench = capsys.readouterr().out.split("\n\n")
    assert "nb201" not in models and models.splitlines()[0].split() == ["NAME", "TASK", "DATASET", "METRIC", "PARAMS", "WEIGHTS"]
    assert bench.splitlines()[0].split() == ["BENCHMARK", "TASK", "DATASET", "FILES", "USE"]
    assert bench.splitlines()[2].startswith("nb201 ") and "2.6 MB" in bench and "python -m zoo space=nb201 estimate=nb201" in bench
    assert main(["info", "nb201"]) == 0
    info = capsys.readouterr().out
    assert "kind        benchmark" in info and "params      " not in info and "nats_bench.csv.xz" in info
    assert main(["download", "nb201", "--quiet"]) == 0
    d = Path(capsys.readouterr().out.strip())
    assert d == entry_dir(entry) and all(sha256_file(d / f.name) == f.sha256 for f in entry.files)


def test_fine_tuning_the_tables_is_one_line_through_the_cli(zoo_cli: ZooCli) -> None:
    proc = zoo_cli.run("mode=finetune", "checkpoint=nb201", progress=None, timeout=120)
    assert "nb201 is a benchmark, not a model" in one_error_line(proc), proc.stderr


def test_nb201_genotype_draws(tmp_path: Path) -> None:
    from zoo.plots import plot_genotype

    plot_genotype(NB201Genotype.from_arch_str(ARCH_9930), tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 5000


def test_space_rejects_other_ops() -> None:
    with pytest.raises(ValueError, match="fixed op set"):
        NB201Space(ops=["none", "sep_conv_3x3"])
