"""Tabular estimation on NAS-Bench-201 (Dong & Yang, ICLR 2020): a query is a table look-up.

* reward: the 12-epoch validation accuracy (``minibench_12ep``, column ``cifar10-val``;
  the low-fidelity numbers the benchmark's own search experiments used),
* final result of a run: the 200-epoch test accuracy of the returned cell
  (``nats_tss_200ep``, NATS-Bench topology space, Dong et al., TPAMI 2021),
* ``latency_ms``: measured latency of the cell's network on one device
  (``help_latency``, from HELP, Lee et al., NeurIPS 2021 / HW-NAS-Bench, Li et al., ICLR 2021),
* ``params``: parameters of :class:`zoo.space.nb201.NB201Network`, counted exactly.

The tables ship with zoo as the hub entry ``nb201`` (kind ``benchmark``: the CSVs compressed
with xz in ``zoo/hub/releases/nb201/``, with their provenance and licences in its README.md).
Unless ``estimate.root`` or the ``ZOO_NB201_ROOT`` environment variable names a folder of
tables, the first use fetches the entry into the zoo cache (``$ZOO_HOME/hub/nb201/REVISION/``,
sha256-checked, like a checkpoint) and reads the compressed files from there. A folder may
hold the tables in the benchmark's own layout (``minibench_12ep/...csv``) or flat, each plain,
``.xz`` or ``.gz``. They are parsed with :mod:`csv` once per process and cached.
"""

from __future__ import annotations

import csv
import gzip
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from zoo.estimate.base import ESTIMATORS, Estimator

ENV_VAR = "ZOO_NB201_ROOT"
ENTRY = "nb201"  # the hub entry (kind benchmark) that ships the tables
MINI_12EP = "minibench_12ep/mini-bench-arch-cell-accs.csv"
NATS_200EP = "nats_tss_200ep/nats_bench.csv"
HELP_LATENCY = "help_latency/nb201_latency_ms_help.csv"

DATASETS: dict[str, dict[str, Any]] = {
    # name: (12-epoch val column, 12-epoch test column, 200-epoch test column, classes)
    "cifar10": {"val12": "cifar10-val", "test12": "cifar10-test", "test200": "CIFAR10TestAccuracy200Epochs", "classes": 10},
    "cifar100": {"val12": "cifar100-val", "test12": "cifar100-test", "test200": "CIFAR100TestAccuracy200Epochs", "classes": 100},
    "imagenet16-120": {"val12": "imagenet-val", "test12": "imagenet-test", "test200": "ImageNetTestAccuracy200Epochs", "classes": 120},
}


class BenchmarkNotFoundError(ValueError):
    """The benchmark tables are not where the loader looked; the message says how to point at them."""


def table_path(root: Path, rel: str) -> Path | None:
    """Where the table ``rel`` (e.g. ``minibench_12ep/....csv``) lies under ``root``: in the
    benchmark's layout or flat (as the hub entry stores it), plain or compressed; None if absent."""
    for base in (root / rel, root / Path(rel).name):
        for suffix in ("", ".xz", ".gz"):
            cand = base.with_name(base.name + suffix)
            if cand.is_file():
                return cand
    return None


def _open_text(path: Path) -> TextIO:
    """A table for reading as text: xz and gzip files are decompressed as they are read."""
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8", newline="")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _as_nb201_dir(p: Path) -> Path | None:
    for cand in (p, p / "nb201", p / "benchmarks" / "nb201"):
        if table_path(cand, MINI_12EP) is not None:
            return cand
    return None


def fetch_tables(progress: bool = False) -> Path:
    """The hub entry ``nb201`` fetched into the zoo cache (a no-op once there); returns its directory."""
    from zoo.hub.api import fetch_entry
    from zoo.hub.download import HubError
    from zoo.hub.registry import get_entry

    try:
        d = fetch_entry(get_entry(ENTRY, kind="benchmark"), progress=progress)
    except HubError as e:
        raise BenchmarkNotFoundError(
            f"NAS-Bench-201 tables: {e}; set estimate.root=DIR or {ENV_VAR}=DIR to a folder holding minibench_12ep/, nats_tss_200ep/ and help_latency/"
        ) from None
    if _as_nb201_dir(d) is None:
        raise BenchmarkNotFoundError(f"the zoo entry {ENTRY!r} fetched into {d} holds no {Path(MINI_12EP).name}[.xz|.gz]")
    return d


def find_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the three tables: ``explicit`` (``estimate.root``), else ``$ZOO_NB201_ROOT``,
    else the hub entry ``nb201`` fetched into the zoo cache."""
    if explicit:
        p = Path(explicit).expanduser()
        found = _as_nb201_dir(p)
        if found is None:
            raise BenchmarkNotFoundError(
                f"estimate.root={str(explicit)!r} does not hold the NAS-Bench-201 tables ({MINI_12EP}[.xz|.gz] not found there, flat or under nb201/, benchmarks/nb201/)"
            )
        return found.resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        found = _as_nb201_dir(Path(env).expanduser())
        if found is None:
            raise BenchmarkNotFoundError(f"{ENV_VAR}={env!r} does not hold the NAS-Bench-201 tables ({MINI_12EP}[.xz|.gz] not found there)")
        return found.resolve()
    return fetch_tables().resolve()


def _read_csv(root: Path, rel: str) -> tuple[Path, list[str], list[list[str]]]:
    path = table_path(root, rel)
    if path is None:
        raise BenchmarkNotFoundError(
            f"NAS-Bench-201 table {root / rel} is missing; the root folder must hold {MINI_12EP}, {NATS_200EP} and {HELP_LATENCY} (or those files flat, plain, .xz or .gz)"
        )
    with _open_text(path) as f:
        rows = list(csv.reader(f))
    return path, rows[0], rows[1:]


def _column(header: list[str], rows: list[list[str]], name: str, path: Path) -> list[str]:
    if name not in header:
        raise BenchmarkNotFoundError(f"NAS-Bench-201 table {path} has no column {name!r}; columns: {', '.join(header)}")
    k = header.index(name)
    return [r[k] for r in rows]


def latency_devices(root: Path) -> list[str]:
    """Device columns of the HELP latency table (read from its header only)."""
    path = table_path(root, HELP_LATENCY)
    if path is None:
        raise BenchmarkNotFoundError(f"NAS-Bench-201 latency table {root / HELP_LATENCY}[.xz|.gz] is missing")
    with _open_text(path) as f:
        header = next(csv.reader(f))
    return [c for c in header if c not in ("arch_index", "arch_str")]


@dataclass
class NB201Tables:
    """All 15,625 cells of one root folder, indexed by benchmark index (row order of every table)."""

    root: Path
    arch: list[str]
    index: dict[str, int]
    acc: dict[str, np.ndarray]
    _latency: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> NB201Tables:
        path, header, rows = _read_csv(root, MINI_12EP)
        arch = _column(header, rows, "cellstr", path)
        acc: dict[str, np.ndarray] = {}
        for spec in DATASETS.values():
            for col in (spec["val12"], spec["test12"]):
                acc[col] = np.asarray(_column(header, rows, col, path), dtype=np.float64)
        path2, header2, rows2 = _read_csv(root, NATS_200EP)
        arch2 = _column(header2, rows2, "ArchitectureString", path2)
        if arch2 != arch:
            raise BenchmarkNotFoundError(f"{path2} and {path} list the cells in different orders")
        for spec in DATASETS.values():
            acc[spec["test200"]] = np.asarray(_column(header2, rows2, spec["test200"], path2), dtype=np.float64)
        return cls(root, arch, {a: i for i, a in enumerate(arch)}, acc)

    def latency(self, device: str) -> np.ndarray:
        if not self._latency:
            path, header, rows = _read_csv(self.root, HELP_LATENCY)
            if _column(header, rows, "arch_str", path) != self.arch:
                raise BenchmarkNotFoundError(f"{path} lists the cells in a different order from the 12-epoch table under {self.root}")
            for c in header:
                if c not in ("arch_index", "arch_str"):
                    self._latency[c] = np.asarray(_column(header, rows, c, path), dtype=np.float64)
        return self._latency[device]

    def lookup(self, arch_str: str) -> int:
        try:
            return self.index[arch_str]
        except KeyError:
            raise KeyError(f"cell {arch_str!r} is not in the NAS-Bench-201 tables") from None


_CACHE: dict[Path, NB201Tables] = {}


def load_tables(root: str | os.PathLike[str] | None = None) -> NB201Tables:
    """The tables under ``root`` (default: :func:`find_root`'s choice), parsed once per process."""
    r = find_root(root)
    if r not in _CACHE:
        _CACHE[r] = NB201Tables.load(r)
    return _CACHE[r]


@ESTIMATORS.register("nb201")
class NB201Estimator(Estimator):
    """Answers a query from the NAS-Bench-201 tables instead of training."""

    needs_task = False
    tabular = True
    space = "nb201"
    provides = ("reward", "val_acc_12ep", "latency_ms", "params", "nb201_index")

    def __init__(self, cfg: Any = None, task: Any = None) -> None:
        super().__init__(cfg, task)
        get = (lambda k, d=None: cfg.get(k, d)) if cfg is not None else (lambda k, d=None: d)
        self.dataset = get("dataset", "cifar10")
        if self.dataset not in DATASETS:
            raise ValueError(f"estimate.dataset={self.dataset!r} is invalid; allowed: {', '.join(DATASETS)}")
        self.root = find_root(get("root"))
        self.latency_device = get("latency_device", "gold_6240")
        devices = latency_devices(self.root)
        if self.latency_device not in devices:
            raise ValueError(f"estimate.latency_device={self.latency_device!r} is invalid; allowed: {', '.join(devices)}")
        self._tables: NB201Tables | None = None

    @property
    def tables(self) -> NB201Tables:
        if self._tables is None:
            self._tables = load_tables(self.root)
        return self._tables

    def index_of(self, genotype: Any) -> int:
        if getattr(genotype, "space", None) != "nb201":
            raise ValueError(
                f"estimate=nb201 answers space=nb201 cells only, got a {getattr(genotype, 'space', type(genotype).__name__)!r} genotype"
            )
        return self.tables.lookup(genotype.to_arch_str())

    def __call__(self, genotype: Any) -> dict[str, Any]:
        from zoo.space.nb201 import nb201_param_count

        i = self.index_of(genotype)
        spec = DATASETS[self.dataset]
        val = float(self.tables.acc[spec["val12"]][i])
        return {
            "reward": val,
            "val_acc_12ep": val,
            "latency_ms": float(self.tables.latency(self.latency_device)[i]),
            "params": nb201_param_count(genotype, num_classes=spec["classes"]),
            "nb201_index": i,
        }

    def test_accuracy_200ep(self, genotype: Any) -> float:
        return float(self.tables.acc[DATASETS[self.dataset]["test200"]][self.index_of(genotype)])

    def final(self, genotype: Any) -> dict[str, Any]:
        """The 200-epoch test accuracy of the cell, beside its 12-epoch numbers."""
        out = self(genotype)
        out.pop("reward")
        i = out["nb201_index"]
        spec = DATASETS[self.dataset]
        out["test_acc_12ep"] = float(self.tables.acc[spec["test12"]][i])
        out["test_acc_200ep"] = float(self.tables.acc[spec["test200"]][i])
        out["latency_device"] = self.latency_device
        out["dataset"] = self.dataset
        return out
