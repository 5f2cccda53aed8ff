"""A bundle as one file: ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` holding its plain files.

Extraction refuses, before writing anything, a member with an absolute path, a ``..``
component, a link, a device or any other non-regular file: an archive from the
internet must not write outside the directory it is unpacked into.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from zoo.hub.download import HubError, file_lock, sha256_file, zoo_home

BUNDLE_FILES = ("config.json", "model.safetensors", "README.md")


def _check_member(archive: Path, name: str) -> str:
    p = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise HubError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in p.parts:
        raise HubError(f"{archive}: member {name!r} leaves the extraction directory ('..'); refused")
    return str(p)


def pack(directory: str | Path, out: str | Path, files: tuple[str, ...] = BUNDLE_FILES) -> Path:
    """Writes the bundle files of ``directory`` into one archive (format from the suffix)."""
    directory, out = Path(directory), Path(out)
    present = [f for f in files if (directory / f).is_file()]
    if "config.json" not in present:
        raise HubError(f"{directory} has no config.json; not a bundle")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    os.close(fd)
    if out.name.endswith(".zip"):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for f in present:
                z.write(directory / f, f)
    elif out.name.endswith((".tar", ".tar.gz", ".tgz")):
        mode = "w:gz" if out.name.endswith(("gz",)) else "w"
        with tarfile.open(tmp, mode) as t:  # type: ignore[call-overload]
            for f in present:
                info = t.gettarinfo(str(directory / f), arcname=f)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(directory / f, "rb") as fh:
                    t.addfile(info, fh)
    else:
        os.unlink(tmp)
        raise HubError(f"archive {out} has an unknown suffix; allowed: .tar, .tar.gz, .tgz, .zip")
    from zoo.atomic import as_umask_allows

    as_umask_allows(tmp)
    os.replace(tmp, out)
    return out


def unpack(archive: str | Path, dest: str | Path) -> Path:
    """Safely extracts ``archive`` into ``dest``; a bundle inside one top folder is flattened."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=dest, prefix=".unpack."))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                members = z.infolist()
                for m in members:
                    _check_member(archive, m.filename)
                    mode = (m.external_attr >> 16) & 0o170000
                    if mode and mode not in (0o100000, 0o040000):
                        raise HubError(f"{archive}: member {m.filename!r} is not a regular file; refused")
                for m in members:
                    target = stage / _check_member(archive, m.filename)
                    if m.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for m in members:
                    _check_member(archive, m.name)
                    if not (m.isfile() or m.isdir()):
                        raise HubError(f"{archive}: member {m.name!r} is a link or special file; refused")
                for m in members:
                    target = stage / _check_member(archive, m.name)
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = t.extractfile(m)
                    assert src is not None
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        else:
            raise HubError(f"{archive} is neither a tar nor a zip archive")
        root = stage
        entries = [p for p in stage.iterdir()]
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        if not (root / "config.json").is_file():
            raise HubError(f"{archive} holds no config.json; not a bundle")
        for p in root.iterdir():
            os.replace(p, dest / p.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest


def unpack_cached(archive: str | Path) -> Path:
    """Unpacks a bundle archive once into ``$ZOO_HOME/archives/SHA256/`` and returns that directory."""
    archive = Path(archive)
    digest = sha256_file(archive)
    d = zoo_home() / "archives" / digest[:16]
    with file_lock(zoo_home() / "archives" / f".{digest[:16]}.lock"):
        if not (d / "config.json").is_file():
            if d.exists():
                shutil.rmtree(d)
            tmp = d.with_name(d.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            unpack(archive, tmp)
            tmp.rename(d)
    return d
