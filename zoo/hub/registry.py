"""The zoo's registries: versioned JSON files listing checkpoints and where their files live.

A registry file is ``{"schema_version": 1, "entries": [ENTRY, ...]}``; an entry is::

    {"name": "digits-darts", "task": "classification", "dataset": "digits",
     "description": "...", "strategy": "darts", "space": "darts",
     "metrics": {"test_accuracy": 0.98}, "params": 658276, "license": "Apache-2.0",
     "model": {... zoo.create_model keyword arguments, genotype included ...},
     "labels": ["0", ...], "reproduce": "python -m zoo",
     "files": [{"name": "model.safetensors", "sha256": "...", "size": 2641234,
                "urls": ["digits-darts/model.safetensors", "https://...", "hf://owner/repo/model.safetensors"]}]}

``files`` is empty for an architecture-only entry. ``"kind"`` says what an entry is: ``"model"``
(the default: a checkpoint or an architecture) or ``"benchmark"`` (data for tabular search, such
as ``nb201``'s NAS-Bench-201 tables; it needs no ``model``, and its files are fetched into the
cache like a checkpoint's but never loaded as a model). :func:`load_entries` and :func:`get_entry`
serve models unless asked for another kind, so ``create_model``, ``from_pretrained``, fine-tuning
and timm never see a benchmark, and name one in a one-line refusal. A URL may be relative: it is resolved
against the registry file's own location (a directory or an http(s) URL), so a registry
and its release files move together. The package ships ``zoo/hub/registry.json``; users
add theirs with ``ZOO_REGISTRY`` (comma-separated paths or URLs), ``hub.registry=`` in the
run config or ``--registry`` on the hub CLI. A later registry overrides an entry of the
same name from an earlier one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.hub.download import TIMEOUT_S, HubError, zoo_home

SCHEMA_VERSION = 1
BUILTIN_REGISTRY = Path(__file__).resolve().parent / "registry.json"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
REQUIRED = ("name", "task", "model", "files")
KINDS = ("model", "benchmark")
REQUIRED_BY_KIND = {"model": REQUIRED, "benchmark": ("name", "task", "files")}


@dataclass(frozen=True)
class FileRef:
    name: str
    sha256: str
    size: int | None
    urls: tuple[str, ...]

    @property
    def is_archive(self) -> bool:
        return self.name.endswith(ARCHIVE_SUFFIXES)


@dataclass
class Entry:
    name: str
    task: str
    model: dict[str, Any]
    files: list[FileRef]
    source: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``model`` (a checkpoint or an architecture) or ``benchmark`` (tables, not a model)."""
        return str(self.data.get("kind") or "model")

    @property
    def has_weights(self) -> bool:
        return self.kind == "model" and any(f.name == "model.safetensors" or f.is_archive for f in self.files)

    @property
    def dataset(self) -> str:
        return str(self.data.get("dataset") or "-")

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.data.get("metrics") or {})

    @property
    def revision(self) -> str:
        """A short id of the entry's file contents (the cache directory name)."""
        digest = hashlib.sha256("".join(sorted(f.sha256 for f in self.files)).encode()).hexdigest()
        return digest[:12]

    @property
    def timm_name(self) -> str:
        return "zoo_" + re.sub(r"[^a-z0-9_]", "_", self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.data,
            "name": self.name,
            "task": self.task,
            "model": self.model,
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size, "urls": list(f.urls)} for f in self.files],
            "source": self.source,
        }


def registry_sources(extra: str | Iterable[str] | None = None) -> list[str]:
    """The built-in registry, then ``$ZOO_REGISTRY``, then ``extra`` (later ones win)."""
    sources = [str(BUILTIN_REGISTRY)]
    env = os.environ.get("ZOO_REGISTRY", "")
    sources += [s.strip() for s in env.split(",") if s.strip()]
    if isinstance(extra, str):
        extra = [s.strip() for s in extra.split(",") if s.strip()]
    sources += [str(s) for s in (extra or []) if s]
    return sources


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://", "file://"))


def _read_source(source: str) -> dict[str, Any]:
    """Reads a registry from a path or URL; a remote one is cached for offline use."""
    if source.startswith(("http://", "https://")):
        cache = zoo_home() / "registries" / (hashlib.sha256(source.encode()).hexdigest()[:16] + ".json")
        try:
            with urllib.request.urlopen(urllib.request.Request(source, headers={"User-Agent": "zoo-hub"}), timeout=TIMEOUT_S) as r:
                text = r.read().decode()
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, cache)
        except OSError as e:
            if not cache.is_file():
                raise HubError(f"registry {source} cannot be read ({e}) and no cached copy exists") from None
            text = cache.read_text()
    else:
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(source).path)) if source.startswith("file://") else Path(source)
        if path.is_dir():
            path = path / "registry.json"
        if not path.is_file():
            raise HubError(
                f"registry {source} does not exist (ZOO_REGISTRY / hub.registry / --registry take a registry.json file, its directory or a URL)"
            )
        text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HubError(f"registry {source} is not valid JSON: {e}") from None
    return data


def resolve_url(url: str, source: str) -> str:
    """Makes a relative file URL absolute against the registry it came from."""
    if "://" in url or Path(url).is_absolute():
        return url
    if source.startswith(("http://", "https://")):
        return urllib.parse.urljoin(source, url)
    base = Path(urllib.request.url2pathname(urllib.parse.urlparse(source).path)) if source.startswith("file://") else Path(source)
    base_dir = base if base.is_dir() else base.parent
    return str((base_dir / url).resolve())


def parse_registry(data: Any, source: str) -> list[Entry]:
    """Validates one registry document; every problem is one line naming the source and field."""
    if not isinstance(data, dict) or "entries" not in data:
        raise HubError(f"registry {source} has no 'entries' list")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise HubError(f"registry {source} has schema_version={version!r}; allowed: an integer")
    if version > SCHEMA_VERSION:
        raise HubError(f"registry {source} has schema_version {version}; this zoo reads up to {SCHEMA_VERSION}: upgrade zoo")
    entries, seen = [], set()
    for i, raw in enumerate(data["entries"]):
        where = f"registry {source} entry {i}"
        if not isinstance(raw, dict):
            raise HubError(f"{where} is not an object")
        kind = raw.get("kind", "model")
        if kind not in KINDS:
            raise HubError(f"{where} ({raw.get('name', '?')}) has kind={kind!r}; allowed: {', '.join(KINDS)}")
        for key in REQUIRED_BY_KIND[kind]:
            if key not in raw:
                raise HubError(f"{where} ({raw.get('name', '?')}) lacks the field {key!r}")
        name = raw["name"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise HubError(f"{where} has name={name!r}; allowed: lower-case letters, digits, '_', '.', '-'")
        if name in seen:
            raise HubError(f"{where}: the name {name!r} appears twice")
        seen.add(name)
        files = []
        for f in raw["files"]:
            if not isinstance(f, dict) or not {"name", "sha256", "urls"} <= set(f):
                raise HubError(f"{where} ({name}): each file needs name, sha256 and urls")
            if "/" in f["name"] or f["name"] in ("", ".", ".."):
                raise HubError(f"{where} ({name}): file name {f['name']!r} must be a plain file name")
            if not re.fullmatch(r"[0-9a-f]{64}", str(f["sha256"])):
                raise HubError(f"{where} ({name}): file {f['name']} has sha256={f['sha256']!r}; allowed: 64 lower-case hex digits")
            files.append(FileRef(f["name"], f["sha256"], f.get("size"), tuple(resolve_url(u, source) for u in f["urls"])))
        rest = {k: v for k, v in raw.items() if k not in ("name", "task", "model", "files", "source")}
        entries.append(Entry(name, raw["task"], dict(raw.get("model") or {}), files, source, rest))
    return entries


def load_entries(extra: str | Iterable[str] | None = None, kind: str | None = "model") -> dict[str, Entry]:
    """The entries of one ``kind`` (default: models; ``None``: every kind) of all registries,
    by name (later registries override earlier ones)."""
    out: dict[str, Entry] = {}
    for source in registry_sources(extra):
        for e in parse_registry(_read_source(source), source):
            out[e.name] = e
    return {n: e for n, e in out.items() if kind is None or e.kind == kind}


def get_entry(name: str, extra: str | Iterable[str] | None = None, kind: str | None = "model") -> Entry:
    """The entry ``name``; one that is not of ``kind`` (default: a model; ``None``: any) is refused in one line."""
    entries = load_entries(extra, kind=None)
    if name not in entries:
        close = [n for n in entries if name.lower().replace("-", "_") == n.replace("-", "_")]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise HubError(f"unknown zoo entry {name!r}{hint} (python -m zoo.hub list shows them; allowed: {', '.join(sorted(entries))})")
    e = entries[name]
    if kind is not None and e.kind != kind:
        if e.kind == "benchmark":
            use = f"use it with `{e.data['usage']}`; " if e.data.get("usage") else ""
            raise HubError(
                f"{name} is a benchmark, not a model: it has no weights to load, build or fine-tune ({use}`python -m zoo.hub download {name}` fetches its files)"
            )
        raise HubError(f"{name} is a {e.kind}, not a {kind}")
    return e


def write_registry(path: Path, entries: list[dict[str, Any]]) -> None:
    """Writes a registry document atomically (entries sorted by name)."""
    from zoo.atomic import save_json_atomic

    for e in entries:
        e.pop("source", None)
    save_json_atomic(path, {"schema_version": SCHEMA_VERSION, "entries": sorted(entries, key=lambda e: e["name"])})


def upsert_registry(path: Path, entry: dict[str, Any]) -> None:
    """Adds ``entry`` to the registry file at ``path`` (created if missing), replacing one of the same name."""
    entries: list[dict[str, Any]] = []
    if path.is_file():
        data = json.loads(path.read_text())
        parse_registry(data, str(path))
        entries = [e for e in data["entries"] if e["name"] != entry["name"]]
    write_registry(path, entries + [entry])
