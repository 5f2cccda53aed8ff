"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def as_umask_allows(path: str | Path) -> None:
    """Gives a temporary file the mode a plainly created one would get (mkstemp makes it 0600,
    which would leave bundles unreadable to other users once renamed into place)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def save_json_atomic(path: str | Path, data: Any) -> None:
    """Writes JSON through a temporary file in the same directory, fsynced, then renamed into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    as_umask_allows(tmp)
    os.replace(tmp, path)
