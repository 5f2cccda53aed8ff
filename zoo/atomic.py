"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def as_umask_allows(path: str | Path) -> None:
    """Gives a temporary file the mode a plainly created one would get (mkstemp makes it 0600,
    which would leave bundles unreadable to other users once renamed into place)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write`` on a temporary binary file in ``path``'s directory, fsyncs it, gives it the umask's mode and
    renames it into place; a failed write leaves ``path`` as it was and no temporary file behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        as_umask_allows(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_json_atomic(path: str | Path, data: Any) -> None:
    """Writes JSON through a temporary file in the same directory, fsynced, then renamed into place."""
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2, sort_keys=False).encode()))
