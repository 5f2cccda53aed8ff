"""Where a run computes: the top-level ``device`` option resolved to a torch device, bf16 autocast
for ``trainer.amp``, and DataLoader options for batches bound for a device.

``device`` is ``auto`` (CUDA when ``torch.cuda.is_available()``, else the CPU), ``cpu``, ``cuda`` or
``cuda:N``; :func:`resolve_device` refuses one this machine does not have in one line, before any
work. The task holds the resolved device (``Task.device``) and everything that places tensors takes
it from there or from the module it runs (:func:`model_device`); this module is the one
place that names a device (``tests/test_device_literals.py`` checks the rest of ``zoo/`` and ``tasks/``).

Mixed precision (``trainer.amp=true``) is ``torch.autocast`` with bfloat16 on CUDA around the
forward pass and loss of each training step; bf16 has float32's exponent range, so gradients need
no loss scaling (no ``GradScaler``), and the backward pass runs outside the context as torch advises.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.config_values import ConfigError

_NAME = re.compile(r"auto|cpu|cuda(?::(\d+))?")


def cuda_device_count() -> int:
    """CUDA devices torch can use here (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def allowed_devices() -> list[str]:
    """The ``device`` values this machine accepts, in the order error messages list them."""
    n = cuda_device_count()
    return ["auto", "cpu", *(["cuda", *(f"cuda:{i}" for i in range(n))] if n else [])]


def resolve_device(value: Any) -> torch.device:
    """The torch device of a ``device`` option; a one-line :class:`ConfigError` naming the value and
    what this machine allows for a malformed name or a CUDA device it does not have."""
    allowed = ", ".join(allowed_devices())
    match = _NAME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"device={value} is invalid; allowed: {allowed}")
    n = cuda_device_count()
    if value == "auto":
        return torch.device("cuda" if n else "cpu")
    if value.startswith("cuda"):
        if not n:
            raise ConfigError(
                f"device={value} is invalid: this machine has no CUDA device (torch.cuda.is_available() is False); allowed: {allowed}"
            )
        if match.group(1) is not None and int(match.group(1)) >= n:
            raise ConfigError(f"device={value} is invalid: this machine has {n} CUDA device{'s' if n > 1 else ''}; allowed: {allowed}")
    return torch.device(value)


def check_amp(amp: bool, device: torch.device) -> None:
    """``trainer.amp=true`` needs a CUDA device: a one-line :class:`ConfigError` on any other."""
    if amp and device.type != "cuda":
        raise ConfigError(
            f"trainer.amp=true is invalid on device={device} (mixed precision is bf16 autocast on CUDA); allowed: false, or device=cuda"
        )


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled`` (CUDA only, :func:`check_amp`); else a context that does nothing."""
    if not enabled:
        return contextlib.nullcontext()
    check_amp(True, device)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class AutocastLoss:
    """``loss(model, batch)`` computed under :func:`autocast`; what calls it runs the backward pass outside."""

    def __init__(self, loss: Callable[[nn.Module, Any], torch.Tensor], device: torch.device) -> None:
        check_amp(True, device)
        self.loss, self.device = loss, device

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        with autocast(self.device, True):
            return self.loss(model, batch)


def reseed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the worker's copy of its dataset's augmentation generator
    (``dataset.rng``, the attribute :meth:`zoo.runners.checkpoint.EpochCheckpoint.track` saves) is
    reseeded from the worker's torch seed. That seed comes from the loader's shuffling generator, so
    workers draw different augmentations and an epoch's draws repeat when the generator's state does
    (an exact resume); without it every worker would replay the same draws."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(getattr(info.dataset, "rng", None), np.random.Generator):
        info.dataset.rng = np.random.default_rng(info.seed)  # type: ignore[attr-defined]


def loader_options(device: torch.device, num_workers: int = 0) -> dict[str, Any]:
    """DataLoader keyword arguments for batches bound for ``device``: page-locked batches when it is
    CUDA (faster, asynchronous copies), ``num_workers`` loading processes (``trainer.num_workers``)."""
    options: dict[str, Any] = {"pin_memory": device.type == "cuda", "num_workers": int(num_workers)}
    if num_workers > 0:
        options["worker_init_fn"] = reseed_worker
    return options


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) is; torch's default device for a module without tensors."""
    return next((t.device for t in itertools.chain(model.parameters(), model.buffers())), torch.get_default_device())


def cpu_copy(model: nn.Module) -> nn.Module:
    """``model`` when its tensors are all on the CPU, else a copy there (the caller's model stays where it is)."""
    if all(t.device.type == "cpu" for t in itertools.chain(model.parameters(), model.buffers())):
        return model
    return copy.deepcopy(model).cpu()


@dataclass(frozen=True)
class Device:
    """The spec of the ``device`` option: a value this machine has (:func:`resolve_device` says why another is not)."""

    def allows(self, v: Any) -> bool:
        try:
            resolve_device(v)
        except ConfigError:
            return False
        return True

    def __str__(self) -> str:
        return ", ".join(allowed_devices())
