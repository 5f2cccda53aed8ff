"""The task plug-in interface.

A task owns its data, turns a genotype into a model, hands one-shot strategies a
:class:`OneShotProblem`, trains and evaluates. It knows the space/ops API and the
genotype, never a strategy. A task is one package under ``tasks/`` (see
``docs/architecture.md``, "Adding a task"): it registers its :class:`Task` subclass with
``@TASKS.register("name")`` and, beside it, its model builder (:data:`zoo.models.MODEL_BUILDERS`),
fine-tuner (:data:`zoo.finetune.FINETUNERS`), hub facts (:data:`zoo.hub.facts.HUB_FACTS`) and
ecosystem bridges (:data:`zoo.hub.facts.BRIDGES`); the core finds them through these registries.
A task trained by gradient descent on batches subclasses :class:`SupervisedTask`, which turns its
loader, loss and metrics into estimation, the one-shot problem and retraining (with a baseline).
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from zoo.config_values import NON_NEGATIVE, POSITIVE, POSITIVE_INT, ConfigError, Flag, Spec, check_values
from zoo.device import check_amp, loader_options, resolve_device
from zoo.estimate.problem import OneShotProblem
from zoo.registry import Registry
from zoo.space.base import SearchSpace


class DataError(ValueError):
    """Bad or missing data, reported in one line naming the path and the problem."""


# what every task's trainer reads; a task adds the keys its own training reads (``trainer_specs``)
COMMON_TRAINER_SPECS: dict[str, Spec] = {
    "batch_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "estimate_epochs": POSITIVE_INT,
    "lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "grad_clip": NON_NEGATIVE,
    "amp": Flag(),  # bf16 autocast of the training steps (CUDA only; zoo.device)
}


class Task(ABC):
    """One task: data, models from genotypes, training, metrics (``score`` is higher-better)."""

    name: str = "abstract"
    metric: str = "score"
    supernet_kinds: tuple[str, ...] = ("darts",)  # one-shot supernets it builds (OneShotStrategy.supernet_kind)
    second_order: ClassVar[bool] = (
        True  # its one-shot loss calls the supernet's forward only, so second-order DARTS can re-bind the weights
    )
    spaces: ClassVar[tuple[str, ...]] = ("darts",)  # search spaces whose genotypes it builds models from
    config_specs: ClassVar[Mapping[str, Spec]] = {}  # ``task.*`` values (dotted keys)
    data_specs: ClassVar[Mapping[str, Mapping[str, Spec]]] = {}  # data option -> its ``data.*`` values
    trainer_specs: ClassVar[Mapping[str, Spec]] = COMMON_TRAINER_SPECS  # the ``trainer.*`` values its training reads
    amp_unsupported: ClassVar[str] = ""  # why ``trainer.amp=true`` cannot apply to its training ("": it applies)
    # the ``task.model`` keys that set the final network's width, each with the multiple it must be; the first
    # leads when a constraint fits the width (zoo.constraints), the others follow in proportion
    width_keys: ClassVar[Mapping[str, int]] = {}

    @classmethod
    def check_config(cls, cfg: Any, data_cfg: Any) -> None:
        """One-line errors for a data option this task does not read or a bad ``task.*``/``data.*`` value."""
        if cls.data_specs and data_cfg.name not in cls.data_specs:
            raise ConfigError(f"data={data_cfg.name} is not {cls.name} data; allowed with task={cls.name}: {', '.join(cls.data_specs)}")
        check_values(cfg, cls.config_specs, "task")
        check_values(data_cfg, cls.data_specs.get(data_cfg.name, {}), "data")
        baseline = cfg.get("baseline") if cfg is not None else None
        if baseline is not None and baseline.get("params") is not None:
            named = [k for k in ("model", "encoder", "backbone", "net_arch") if baseline.get(k) is not None]
            if named:
                raise ConfigError(
                    f"task.baseline.params={baseline.params} is invalid with task.baseline.{named[0]}={baseline.get(named[0])} "
                    "(a named baseline has its own size); allowed: one of them"
                )

    @classmethod
    def check_trainer(cls, trainer_cfg: Any) -> None:
        """One-line errors for a trainer of another task (its keys differ from what this task reads)
        or a bad ``trainer.*`` value."""
        keys = set(trainer_cfg.keys()) if trainer_cfg is not None else set()
        if keys != set(cls.trainer_specs):
            odd = sorted(keys - set(cls.trainer_specs)) or sorted(set(cls.trainer_specs) - keys)
            raise ConfigError(
                f"trainer is not a {cls.name} trainer ({'has' if keys - set(cls.trainer_specs) else 'lacks'} {', '.join(odd)}); "
                f"allowed with task={cls.name}: trainer={cls.name}"
            )
        check_values(trainer_cfg, cls.trainer_specs, "trainer")

    def __init__(
        self,
        cfg: Any,
        data_cfg: Any,
        trainer_cfg: Any,
        space: SearchSpace,
        seed: int = 0,
        progress: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        """``device``: where it trains and evaluates (a ``device`` option or a torch device; default ``auto``)."""
        self.cfg = cfg
        self.data_cfg = data_cfg
        self.trainer_cfg = trainer_cfg
        self.space = space
        self.seed = seed
        self.progress = progress
        self.device = device if isinstance(device, torch.device) else resolve_device("auto" if device is None else device)
        self.amp = bool(trainer_cfg.get("amp", False)) if trainer_cfg is not None else False
        if self.amp and self.amp_unsupported:
            raise ConfigError(f"trainer.amp=true is invalid with task={self.name} ({self.amp_unsupported}); allowed: false")
        check_amp(self.amp, self.device)
        self.width_overrides: dict[str, int] = {}  # the final network's widths fitted to the run's constraints
        if getattr(space, "name", None) not in self.spaces:
            hint = " (space=nb201 is searched against its tables: estimate=nb201)" if getattr(space, "name", None) == "nb201" else ""
            raise ConfigError(
                f"space={getattr(space, 'name', space)} is invalid for task={self.name}; allowed: {', '.join(self.spaces)}{hint}"
            )

    def size_config(self, final: bool = True, scaled: bool = True) -> Any:
        """The size of the final network (``task.model``, with the widths fitted to the run's constraints unless
        ``scaled`` is false) or, ``final`` false, of the estimation network (``task.estimate_model``)."""
        if not final:
            return self.cfg.estimate_model
        if not scaled or not self.width_overrides:
            return self.cfg.model
        return OmegaConf.merge(self.cfg.model, self.width_overrides)

    @contextlib.contextmanager
    def scaled_to(self, widths: Mapping[str, int]) -> Iterator[None]:
        """Final networks built inside have ``widths`` (``task.model`` keys), whatever was fitted before."""
        before = self.width_overrides
        self.width_overrides = dict(widths)
        try:
            yield
        finally:
            self.width_overrides = before

    def count_parameters(self, model: nn.Module) -> int:
        """The parameter count reported for ``model`` (``params``)."""
        return sum(p.numel() for p in model.parameters())

    @abstractmethod
    def setup(self) -> None:
        """Loads and checks the data; raises :class:`DataError` before any training."""

    @abstractmethod
    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        """The discrete model (``final`` = the retrained size, else the estimation size)."""

    @abstractmethod
    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        """JSON arguments that rebuild :meth:`build_model`'s module with :func:`zoo.create_model`."""

    @abstractmethod
    def one_shot_problem(self) -> OneShotProblem:
        """The supernet and data for one-shot strategies."""

    @abstractmethod
    def estimate(self, genotype: Any) -> dict[str, Any]:
        """Short-budget estimation for multi-trial strategies: ``{"reward": ..., ...}``."""

    @abstractmethod
    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        """Trains the final model and returns it with its held-out test metrics.

        ``checkpoints`` (:class:`zoo.runners.checkpoint.TrainingCheckpoints`): each model trained
        here saves an epoch checkpoint under its own name (``checkpoints.for_model(name)``) and
        continues from it when the run resumes."""

    def example_input(self) -> torch.Tensor:
        """One input of the task's shape (batch of 1), for timing a built model's latency."""
        raise NotImplementedError(f"task={self.name} has no example_input(), so it cannot time its models (objective latency)")

    def random_input(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` random inputs of :meth:`example_input`'s shape and kind (default: floats in [0, 1]; a task
        whose models read token ids returns ids), for tests that compare two models' outputs."""
        return torch.rand((batch, *self.example_input().shape[1:]), generator=generator)

    def describe_data(self) -> dict[str, Any]:
        """What the bundle's ``config.json`` records of the data (name, sizes, splits)."""
        return {}

    classes: list[str] | None = None  # output labels in index order, recorded in the bundle (set by setup)

    def write_outputs(self, run_dir: Any) -> list[str]:
        """Task-specific files written beside the bundle after retraining (e.g. drawn predictions); their names."""
        return []


ItemT = TypeVar("ItemT")


class AugmentedItems(Dataset[Any], Generic[ItemT]):
    """A data set of ``items`` that subclasses turn into tensors, augmenting them when ``augment`` with their own
    generator ``rng`` (seeded with ``seed``): epoch checkpoints save and restore it
    (:meth:`zoo.runners.checkpoint.EpochCheckpoint.track`) and loader workers reseed it (:func:`zoo.device.reseed_worker`)."""

    def __init__(self, items: Sequence[ItemT], augment: bool, seed: int = 0) -> None:
        self.items = list(items)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)


def _pick(record: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    """``{key: record[source]}`` for each ``key: source`` of ``keys``, in their order."""
    return {key: record[source] for key, source in keys.items()}


class SupervisedTask(Task):
    """A task whose models learn by gradient descent on batches of its data.

    It declares its data (:meth:`loader`), its loss, its metrics (:meth:`evaluate` on a split,
    :meth:`test` on the held-out test data) and a supernet (:meth:`make_supernet`); this class
    implements estimation, the one-shot problem and retraining from them: the searched model,
    then, with ``task.baseline.enabled``, the task's baseline (:meth:`create_baseline`) trained
    beside it with the same data and epochs. Each trained model saves its epoch checkpoints as
    ``checkpoints.for_model("searched")`` / ``"baseline"``. Training is :meth:`fit` (default the
    AdamW warm-up recipe, :func:`zoo.fit.fit_adamw_warmup`).

    The class attributes name the splits and the result keys: ``estimate_metrics`` maps the keys
    of :meth:`estimate`'s result to those of a candidate's record (:meth:`evaluate` on
    ``valid_split``, ``train_loss``, ``params``); its ``reward`` source is also the one-shot score.
    ``retrain_metrics`` and ``baseline_metrics`` map ``metrics.json`` keys to those of a retrained
    model's record (:meth:`test`, ``train_loss``, ``train_seconds``, ``params``); ``metrics.json``'s
    ``baseline`` holds the baseline's record without ``baseline_omits``, with ``params_ratio`` (its
    parameters over the searched model's), and ``searched_minus_baseline`` the searched model's lead on
    each of ``baseline_metrics``' metrics.
    """

    estimate_split: ClassVar[str] = "search_train"  # what candidates train on in estimation
    supernet_split: ClassVar[str] = "search_train"  # what a one-shot supernet's weights train on
    valid_split: ClassVar[str] = "search_valid"  # what scores candidates and the supernet
    estimate_metrics: ClassVar[Mapping[str, str]] = {}
    retrain_metrics: ClassVar[Mapping[str, str]] = {}
    baseline_metrics: ClassVar[Mapping[str, str]] = {}
    baseline_omits: ClassVar[tuple[str, ...]] = ()
    trained_baseline: nn.Module | None = None  # the baseline the last retrain trained (e.g. to time it beside the searched model)

    @abstractmethod
    def loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> Any:
        """Batches of ``split`` (``shuffle``: in a seeded random order, augmented where the task augments)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The training loss of ``model`` on one batch (already on the task's device)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """Validation metrics of ``model`` on ``split`` (where the model is)."""

    @abstractmethod
    def test(self, model: nn.Module, key: str) -> dict[str, Any]:
        """Held-out test metrics of ``model``; ``key`` names it where the task keeps outputs (e.g. drawn predictions)."""

    @abstractmethod
    def make_supernet(self, kind: str = "darts", **kwargs: Any) -> nn.Module:
        """A supernet of ``kind`` (one of :attr:`supernet_kinds`) with ``task.supernet``'s size; kwargs are kind-specific."""

    def data_loader(self, dataset: Any, shuffle: bool = False, batch_size: int | None = None, **options: Any) -> DataLoader:
        """A DataLoader of ``dataset`` on the task's terms: a shuffling generator seeded with the task's seed (or
        ``options``' ``generator``: the one a batch sampler draws from), batches of ``batch_size`` (default
        ``trainer.batch_size``) unless ``options`` has a ``batch_sampler``, and the device's options (page-locked
        batches on CUDA, ``trainer.num_workers`` processes: :func:`zoo.device.loader_options`)."""
        options.setdefault("generator", torch.Generator().manual_seed(self.seed))
        if "batch_sampler" not in options:
            options.update(batch_size=batch_size or int(self.trainer_cfg.batch_size), shuffle=shuffle)
        return DataLoader(dataset, **options, **loader_options(self.device, int(self.trainer_cfg.get("num_workers", 0))))

    def search_loader(self, split: str, shuffle: bool) -> Any:
        """``split``'s batches for a search: at most ``trainer.search_items`` of its items (a seeded subset, the same
        every epoch; null: all), so that on a large data set estimation and the supernet cost a fraction of an epoch
        while a small one is searched whole."""
        loader = self.loader(split, shuffle)
        cap = self.trainer_cfg.get("search_items")
        n = len(loader.dataset)
        if cap is None or int(cap) >= n:
            return loader
        keep = np.sort(np.random.default_rng([self.seed, 7]).permutation(n)[: int(cap)])
        return self.data_loader(Subset(loader.dataset, keep.tolist()), shuffle, collate_fn=loader.collate_fn)

    def fit(
        self, model: nn.Module, split: str, epochs: int, desc: str, checkpoint: Any = None, on_epoch: Any = None, history: Any = None
    ) -> float:
        """Trains ``model`` on ``split``'s shuffled batches (the search's share of them when ``split`` is a search
        split, :meth:`search_loader`); returns the last epoch's mean loss. Default: the dense-prediction recipe,
        :func:`zoo.fit.fit_adamw_warmup`, with torch seeded first; ``on_epoch`` and ``history`` as :func:`zoo.fit.fit`'s."""
        from zoo.fit import fit_adamw_warmup

        torch.manual_seed(self.seed)
        loader = self.search_loader(split, True) if split in (self.estimate_split, self.supernet_split) else self.loader(split, True)
        t = self.trainer_cfg
        return fit_adamw_warmup(model, loader, epochs, self.loss, t, self.device, desc, self.progress, checkpoint, on_epoch, history)

    def create_baseline(self, searched_params: int) -> tuple[nn.Module, dict[str, Any]] | None:
        """The baseline trained beside the searched model (``searched_params`` parameters) when ``task.baseline.enabled``,
        seeded here, and what ``metrics.json``'s ``baseline`` says of it before its results (``model``: what it is);
        ``None``: the task has no baseline."""
        return None

    def supernet_training(self) -> Any:
        """The optimiser and schedule of a one-shot supernet's weights (:attr:`OneShotProblem.weight_training`), or
        ``None`` for the strategy's own SGD recipe. A task whose models need another optimiser (a Transformer:
        Adam with warm-up) returns its own, e.g. :func:`zoo.fit.adamw_warmup_training`."""
        return None

    def one_shot_problem(self) -> OneShotProblem:
        reward = self.estimate_metrics["reward"]
        return OneShotProblem(
            self.make_supernet("darts"),
            self.search_loader(self.supernet_split, True),
            self.search_loader(self.valid_split, True),
            self.loss,
            lambda model, loader: self.evaluate(model, self.valid_split)[reward],
            device=self.device,
            make_supernet=self.make_supernet,
            space=self.space,
            amp=self.amp,
            weight_training=self.supernet_training(),
        )

    def estimate(self, genotype: Any) -> dict[str, Any]:
        model = self.build_model(genotype, final=False)
        loss = self.fit(model, self.estimate_split, int(self.trainer_cfg.estimate_epochs), "estimate")
        record = {**self.evaluate(model, self.valid_split), "train_loss": loss, "params": self.count_parameters(model)}
        return _pick(record, self.estimate_metrics)

    def train_epochs(self) -> int:
        """Epochs of the final trainings (the searched model and its baseline): ``trainer.epochs``; a task may
        derive them from the size of its data instead."""
        return int(self.trainer_cfg.epochs)

    def train_and_test(self, model: nn.Module, key: str, checkpoints: Any = None) -> dict[str, Any]:
        """Trains ``model`` on the training split for :meth:`train_epochs` (epoch checkpoints under ``key``) and tests it:
        its record (:meth:`test`'s metrics, ``train_loss``, ``train_seconds``, ``params``)."""
        t0 = time.time()
        ckpt = checkpoints.for_model(key) if checkpoints is not None else None
        loss = self.fit(model, "train", self.train_epochs(), f"retrain {key}", checkpoint=ckpt)
        seconds = time.time() - t0 + (ckpt.seconds_before if ckpt is not None else 0.0)  # a resumed training's earlier part too
        return {**self.test(model, key), "train_loss": loss, "train_seconds": round(seconds, 1), "params": self.count_parameters(model)}

    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        model = self.build_model(genotype, final=True)
        searched = self.train_and_test(model, "searched", checkpoints)
        out = _pick(searched, self.retrain_metrics)
        self.trained_baseline = None
        baseline = self.cfg.get("baseline")
        made = self.create_baseline(int(searched["params"])) if baseline is not None and bool(baseline.get("enabled", False)) else None
        if made is not None:
            base, about = made
            record = self.train_and_test(base, "baseline", checkpoints)
            self.trained_baseline = base
            out.update(_pick(record, self.baseline_metrics))
            out["baseline"] = {**about, **{k: v for k, v in record.items() if k not in self.baseline_omits}}
            compared = [src for src in self.baseline_metrics.values() if src != "params"]
            out.update(compare_with_baseline(searched, record, compared, self.retrain_metrics.get("score"), out["baseline"]))
        return model, out


def compare_with_baseline(
    searched: Mapping[str, Any], baseline: Mapping[str, Any], metrics: Sequence[str], score: str | None, about: dict[str, Any]
) -> dict[str, Any]:
    """What a run's ``metrics.json`` says of the searched model against the baseline beside it, from their records:
    ``searched_minus_baseline`` (each of ``metrics`` that both have as numbers) and ``score_baseline`` (the baseline's
    ``score`` metric); ``about`` (the baseline's entry) gets ``params_ratio`` (its parameters over the searched model's)."""
    about["params_ratio"] = round(int(baseline["params"]) / max(1, int(searched["params"])), 4)
    numeric = [m for m in metrics if isinstance(baseline.get(m), (int, float)) and isinstance(searched.get(m), (int, float))]
    out: dict[str, Any] = {"searched_minus_baseline": {m: float(searched[m]) - float(baseline[m]) for m in numeric}}
    if score is not None:
        out["score_baseline"] = baseline[score]
    return out


TASKS: Registry[type[Task]] = Registry("task", plugins=True)
