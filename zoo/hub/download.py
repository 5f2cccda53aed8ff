"""Fetching one file into the cache: resume, checksum, lock, atomic rename.

A file is fetched from the first URL of a list that answers: ``https://`` / ``http://``
(stdlib ``urllib``, HTTP ``Range`` to resume a partial file), ``file://`` or a local path,
or ``hf://OWNER/REPO/PATH[@REVISION]`` where ``huggingface_hub`` is installed. The bytes go
to ``<dest>.part`` and become ``<dest>`` by an atomic rename only once their sha256
matches; a mismatch deletes the partial file and raises one line. An exclusive
``fcntl`` lock on ``<dest>.lock`` makes two processes fetching the same file wait for
each other instead of writing the same bytes twice (the lock file is removed with the lock).
This module imports no torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK = 1 << 16
TIMEOUT_S = 30.0


class HubError(ValueError):
    """A hub failure (unknown name, download, checksum, bad bundle) in one line."""


class _FetchError(OSError):
    """A fetch failure whose one-line message already names the error it came from."""


def zoo_home() -> Path:
    """The cache root: ``$ZOO_HOME``, else ``~/.cache/zoo``."""
    return Path(os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held while the block runs (released when the process dies).

    The lock file is removed when the block ends, so nothing is left beside the files it guarded
    (``python -m zoo.hub download NAME --dir D`` leaves only the entry's files); one left by a killed
    process is taken over by the next. A process that waited on a file removed meanwhile locks anew."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:  # the holder we waited for removed it: lock the path's new file
            same = False
        if same:
            break
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)  # while still holding it: a waiter then sees its file is gone and retries
        except FileNotFoundError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _progress(total: int | None, initial: int, desc: str, show: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not show,
        leave=False,
        file=sys.stderr,
    )


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if "://" not in url:
        return Path(url)
    return None


def _copy_local(src: Path, part: Path, total: int | None, desc: str, progress: bool) -> None:
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    offset = part.stat().st_size if part.exists() else 0
    with open(src, "rb") as fin, open(part, "ab") as fout, _progress(total, offset, desc, progress) as bar:
        fin.seek(offset)
        for block in iter(lambda: fin.read(CHUNK), b""):
            fout.write(block)
            bar.update(len(block))


def _fetch_http(url: str, part: Path, total: int | None, desc: str, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "zoo-hub"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the partial file is already whole (or longer): start over
            part.unlink()
            return _fetch_http(url, part, total, desc, progress)
        raise
    with resp:
        mode = "ab"
        if offset and resp.status != 206:  # the server ignored Range: take the whole body
            offset, mode = 0, "wb"
        with open(part, mode) as fout, _progress(total, offset, desc, progress) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                fout.write(block)
                bar.update(len(block))


def _fetch_hf(url: str, part: Path) -> None:
    """``hf://OWNER/REPO/PATH/IN/REPO[@REVISION]`` through huggingface_hub's own cache."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        why = "is not installed" if e.name == "huggingface_hub" else f"cannot be imported ({_one_line(e)})"
        raise FileNotFoundError(f"hf:// URLs need huggingface_hub, which {why}: pip install huggingface_hub") from None
    spec = url[len("hf://") :]
    spec, _, revision = spec.partition("@")
    parts = spec.split("/")
    if len(parts) < 3:
        raise FileNotFoundError(f"{url} is not hf://OWNER/REPO/FILE[@REVISION]")
    try:
        local = hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]), revision=revision or None)
    except Exception as e:
        # Its HTTP errors put the useful part (what was not found, at which URL) on their second
        # line, and its transport errors are not OSErrors: both become one OSError line, so the
        # caller reports it and tries the next URL instead of stopping with a traceback.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise _FetchError(f"{type(e).__name__}: {' '.join(lines[:2])}".rstrip(": ")) from e
    shutil.copyfile(local, part)


def fetch_file(
    urls: list[str],
    dest: str | Path,
    sha256: str,
    size: int | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> Path:
    """Makes ``dest`` hold the file with checksum ``sha256``, fetching it if needed.

    Returns at once when ``dest`` already matches (a cache hit: no request). Otherwise
    takes the lock, resumes ``dest.part`` from the first URL that answers, verifies the
    checksum and renames. Raises :class:`HubError` naming the file on failure.
    """
    dest = Path(dest)
    desc = desc or dest.name
    if dest.is_file() and (size is None or dest.stat().st_size == size) and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():  # another process may have finished it while we waited
            if sha256_file(dest) == sha256:
                return dest
            dest.unlink()
        if not urls:
            raise HubError(f"{desc}: no URL to fetch it from")
        errors = []
        for url in urls:
            if part.exists() and size is not None and part.stat().st_size > size:
                part.unlink()
            try:
                if part.exists() and size is not None and part.stat().st_size == size:
                    pass  # a previous run got every byte but stopped before the rename
                elif url.startswith("hf://"):
                    _fetch_hf(url, part)
                elif (local := _local_path(url)) is not None:
                    _copy_local(local, part, size, desc, progress)
                elif url.startswith(("http://", "https://")):
                    _fetch_http(url, part, size, desc, progress)
                else:
                    raise FileNotFoundError(f"unsupported URL scheme in {url!r}; allowed: https://, http://, file://, hf://, a path")
            except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{url}: {_one_line(e)}")
                continue
            if size is not None and part.stat().st_size < size:
                errors.append(f"{url}: the transfer stopped after {part.stat().st_size} of {size} bytes")
                continue
            got = sha256_file(part)
            if got != sha256:
                part.unlink()
                raise HubError(f"{desc}: sha256 mismatch from {url} (expected {sha256[:16]}..., got {got[:16]}...); the file was deleted")
            os.replace(part, dest)
            return dest
        kept = f"; {part.stat().st_size} bytes kept in {part} to resume" if part.exists() and part.stat().st_size else ""
        raise HubError(f"{desc}: download failed ({'; '.join(errors)}){kept}")


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    if isinstance(e, _FetchError):
        return text[0]
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
