"""Epoch checkpoints of one-shot searches and of final training, so a killed run resumes.

After every supernet epoch the strategy saves its modules and optimizers (``state_dict``),
the random-number states and its counters; ``resume=true`` restores them and continues with
the next epoch, so the resumed search ends where an uninterrupted one would. Tensors go to
``oneshot_checkpoint.safetensors``, the structure around them (optimizer param groups, step
counters, integer keys) to ``oneshot_checkpoint.json``. The JSON names the safetensors file's
sha256: new tensors are written under a name of their own, then the JSON is replaced, then the
tensors take the fixed name, so a kill at any point leaves either the previous pair or the new JSON
with its tensors still under their own name (which a resume moves into place); a pair that still
does not match is refused rather than half-loaded.
Nothing is unpickled.

The search log (``search_log.jsonl``) gets one line per finished epoch; on resume the lines
of epochs after the checkpoint (written before a kill, redone now) are dropped, all of them
when no checkpoint was saved yet (a kill between the first epoch's line and its checkpoint).

:class:`TrainingCheckpoints` gives each model a task trains after the search (the winner, a
baseline) its own pair, ``retrain_<name>.json`` + ``.safetensors``, removed once the run's
bundle is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE = "oneshot_checkpoint.json"
TENSORS = "oneshot_checkpoint.safetensors"


def _encode(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON for ``obj`` with each tensor moved into ``tensors`` (keys and key types kept)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}:{prefix}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _encode(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    raise TypeError(f"cannot checkpoint {type(obj).__name__} at {prefix}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_decode(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class EpochCheckpoint:
    """Saves and restores a one-shot search at epoch boundaries in ``directory``.

    ``objects`` maps names to things with ``state_dict``/``load_state_dict`` (modules,
    optimizers); ``rng`` is the numpy generator the strategy draws from, if any; ``generators``
    are torch generators of the data loaders (their shuffling state) and ``numpy_rngs`` the
    datasets' own augmentation generators (:meth:`track` finds both), saved with
    every checkpoint. ``kind`` names the strategy; a checkpoint of another kind is refused.
    ``stem`` names the file pair (``<stem>.json`` + ``<stem>.safetensors``).
    """

    def __init__(
        self,
        directory: str | Path,
        resume: bool,
        log_path: str | Path | None = None,
        generators: list[torch.Generator] | None = None,
        stem: str = "oneshot_checkpoint",
        numpy_rngs: list[np.random.Generator] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.resume = resume
        self.log_path = Path(log_path) if log_path is not None else None
        self.generators = list(generators or [])
        self.numpy_rngs = list(numpy_rngs or [])
        self.state_name, self.tensors_name = f"{stem}.json", f"{stem}.safetensors"
        # wall seconds the work had taken when the restored checkpoint was saved (0 on a fresh start), so that a
        # resumed run reports what its search or training cost in all, not only the part after the resume
        self.seconds_before = 0.0
        self._clock = time.monotonic()

    @property
    def files(self) -> tuple[Path, Path]:
        return self.directory / self.state_name, self.directory / self.tensors_name

    def remove(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        self._drop_pending()

    def track(self, *loaders: Any) -> EpochCheckpoint:
        """Saves and restores the random state behind ``loaders`` from now on: their torch
        shuffling generators, and the numpy generator ``rng`` of datasets that draw augmentations."""
        self.generators = [g for g in (getattr(l, "generator", None) for l in loaders) if isinstance(g, torch.Generator)]
        rngs = [r for r in (getattr(getattr(l, "dataset", None), "rng", None) for l in loaders) if isinstance(r, np.random.Generator)]
        self.numpy_rngs = list({id(r): r for r in rngs}.values())
        return self

    def save(self, kind: str, objects: dict[str, Any], meta: dict[str, Any], rng: np.random.Generator | None = None) -> None:
        tensors: dict[str, torch.Tensor] = {"rng:torch": torch.get_rng_state()}
        tensors.update({f"rng:loader{i}": g.get_state() for i, g in enumerate(self.generators)})
        states = {name: _encode(obj.state_dict(), name, tensors) for name, obj in objects.items()}
        self.directory.mkdir(parents=True, exist_ok=True)
        state_path, tensor_path = self.files
        tmp = self.directory / f".{self.tensors_name}.{os.getpid()}"
        save_file(tensors, str(tmp))
        digest = _sha256(tmp)
        pending = self._pending(digest)
        os.replace(tmp, pending)
        record = {
            "kind": kind,
            "meta": meta,
            "states": states,
            "numpy_rng": rng.bit_generator.state if rng is not None else None,
            "data_rngs": [g.bit_generator.state for g in self.numpy_rngs],
            "log_lines": self._log_lines(),
            "tensors_sha256": digest,
            "seconds": round(self.seconds_before + time.monotonic() - self._clock, 3),
        }
        tmp = self.directory / f".{self.state_name}.{os.getpid()}"
        tmp.write_text(json.dumps(record))
        # the JSON first, then the tensors it names: a kill between the two leaves the new tensors under their
        # pending name, which restore() moves into place; a kill before leaves the previous pair as it was
        os.replace(tmp, state_path)
        os.replace(pending, tensor_path)
        self._drop_pending()

    def _pending(self, digest: str) -> Path:
        """Where tensors wait, named by their sha256, until the JSON that names them has replaced the old one."""
        return self.directory / f"{self.tensors_name}.{digest[:16]}"

    def _drop_pending(self) -> None:
        for stale in self.directory.glob(f"{self.tensors_name}.*"):
            stale.unlink(missing_ok=True)

    def restore(self, kind: str, objects: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any] | None:
        """Loads the last checkpoint into ``objects`` and returns its ``meta``; ``None`` when not
        resuming or nothing was saved yet (a fresh start, the log emptied)."""
        path, tensor_path = self.files
        if not self.resume:
            return None
        if not path.is_file():
            self._truncate_log(0)  # a fresh start: every logged epoch runs again
            return None
        record = json.loads(path.read_text())
        if record.get("kind") != kind:
            raise ValueError(f"{path} is a checkpoint of {record.get('kind')}, not of {kind}; use a new run directory")
        expected = str(record.get("tensors_sha256"))
        matches = tensor_path.is_file() and _sha256(tensor_path) == expected
        pending = self._pending(expected)
        if not matches and pending.is_file() and _sha256(pending) == expected:  # killed between the JSON's replace and the tensors'
            try:
                os.replace(pending, tensor_path)
            except FileNotFoundError:  # another process of the same run (DDP) completed the save first
                pass
            matches = tensor_path.is_file() and _sha256(tensor_path) == expected
        if not matches:
            raise ValueError(f"{tensor_path} does not match {path} (a save was interrupted); delete both to restart")
        tensors = load_file(str(tensor_path))
        missing = sorted(set(objects) - set(record["states"]))
        if missing:
            raise ValueError(f"{path} has no state for {missing[0]!r}; use a new run directory")
        for name, obj in objects.items():
            obj.load_state_dict(_decode(record["states"][name], tensors))
        torch.set_rng_state(tensors["rng:torch"])
        for i, g in enumerate(self.generators):
            if f"rng:loader{i}" in tensors:
                g.set_state(tensors[f"rng:loader{i}"])
        if rng is not None and record.get("numpy_rng") is not None:
            rng.bit_generator.state = record["numpy_rng"]
        for g, state in zip(self.numpy_rngs, record.get("data_rngs", [])):
            g.bit_generator.state = state
        self._truncate_log(int(record.get("log_lines", 0)))
        self.seconds_before, self._clock = float(record.get("seconds", 0.0)), time.monotonic()
        return dict(record["meta"])

    def _log_lines(self) -> int:
        if self.log_path is None or not self.log_path.exists():
            return 0
        return self.log_path.read_bytes().count(b"\n")

    def _truncate_log(self, lines: int) -> None:
        """Drops log lines written after the checkpoint (their epochs run again)."""
        if self.log_path is None or not self.log_path.exists():
            return
        data = self.log_path.read_bytes()
        kept = b"".join(data.splitlines(keepends=True)[:lines])
        if kept != data:
            tmp = self.log_path.with_name(f".{self.log_path.name}.{os.getpid()}")
            tmp.write_bytes(kept)
            os.replace(tmp, self.log_path)


class TrainingCheckpoints:
    """Epoch checkpoints of the models a task trains after the search, one pair per model name."""

    def __init__(self, directory: str | Path, resume: bool) -> None:
        self.directory = Path(directory)
        self.resume = resume
        self.made: dict[str, EpochCheckpoint] = {}

    def for_model(self, name: str) -> EpochCheckpoint:
        if name not in self.made:
            self.made[name] = EpochCheckpoint(self.directory, self.resume, stem=f"retrain_{name}")
        return self.made[name]

    def remove(self) -> None:
        """Deletes the pairs once the trained models are saved elsewhere (the run's bundle)."""
        for ckpt in self.made.values():
            ckpt.remove()
