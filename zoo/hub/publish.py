"""Publishing: a run directory becomes a zoo entry (bundle files + registry entry).

``push(run_dir, to)`` checks that the bundle loads (weights match the config tensor
for tensor), writes the model card, copies the files to ``to`` and adds the entry to
the registry there:

- a directory (or ``file://`` URL): ``DIR/NAME/{config.json, model.safetensors, README.md}``
  (or ``DIR/NAME.tar`` / ``.zip`` with ``archive=``) and ``DIR/registry.json`` with URLs
  relative to it, so the directory can be served as-is over https;
- an ``http(s)://`` URL: the same layout uploaded with HTTP ``PUT`` (a WebDAV-style
  server or a storage bucket's signed-URL gateway), the registry read, updated, put back.

The architecture-only entries of published architectures come from each task's hub facts
(:meth:`zoo.hub.facts.HubFacts.published_entries`), written by ``scripts/zoo_published_entries.py``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from zoo.hub.archive import BUNDLE_FILES, pack
from zoo.hub.download import TIMEOUT_S, HubError, sha256_file
from zoo.hub.registry import NAME_RE, parse_registry, upsert_registry, write_registry

# CIFAR-10 results reported by Liu et al. (DARTS, ICLR 2019), Table 1, for the
# 20-cell, 36-channel evaluation network trained with cutout.


def default_name(config: dict[str, Any]) -> str:
    data = (config.get("data") or {}).get("name") or "data"
    strategy = (config.get("search") or {}).get("strategy") or "nas"
    name = f"{data}-{strategy}" + ("-ft" if config.get("finetuned_from") else "")
    return re.sub(r"[^a-z0-9_.-]", "-", name.lower())


def entry_for(config: dict[str, Any], name: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """The registry entry describing a bundle's ``config.json``."""
    metrics = {k: v for k, v in (config.get("metrics") or {}).items() if isinstance(v, (int, float)) and k not in ("params", "score")}
    search = config.get("search") or {}
    data = config.get("data") or {}
    entry: dict[str, Any] = {
        "name": name,
        "task": config.get("task"),
        "dataset": data.get("name"),
        "description": f"{config.get('task')} on {data.get('name')}, searched with {search.get('strategy')} in the {search.get('space')} space",
        "strategy": search.get("strategy"),
        "space": search.get("space"),
        "metrics": metrics,
        "params": (config.get("metrics") or {}).get("params"),
        "license": config.get("license"),
        "model": config["model"],
        "labels": config.get("labels"),
        "preprocessing": config.get("preprocessing"),
        "reproduce": config.get("command"),
        "created": datetime.date.today().isoformat(),
        "files": files,
    }
    if config.get("family"):
        entry["family"] = config["family"]["name"]
        entry["description"] += f"; member {name} of the family {', '.join(config['family']['members'])}"
    if config.get("finetuned_from"):
        entry["finetuned_from"] = config["finetuned_from"].get("checkpoint")
        entry["description"] = f"{config.get('task')} on {data.get('name')}, fine-tuned from {entry['finetuned_from']}"
    return entry


def _stage(run_dir: Path, name: str, stage: Path) -> dict[str, Any]:
    """Checks the run's bundle and copies it (with a card naming the entry) into ``stage``."""
    from zoo.atomic import save_json_atomic
    from zoo.hub.bundle import complete_config, load_bundle, read_config, write_card

    config = read_config(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        raise HubError(f"{run_dir} has no model.safetensors; push takes a finished run directory or a bundle")
    load_bundle(run_dir)  # refuses a missing/extra/misshapen tensor by name before anything is published
    stage.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "model.safetensors", stage / "model.safetensors")
    # a run written before the card existed: derive the command and preprocessing, never a commit it did not record
    config = complete_config(run_dir, config, stamp=False)
    save_json_atomic(stage / "config.json", config)
    write_card(stage, name=name)
    return config


SIZE_SUFFIXES = {1: ["m"], 2: ["s", "l"], 3: ["s", "m", "l"], 4: ["xs", "s", "m", "l"], 5: ["xs", "s", "m", "l", "xl"]}


def family_names(base: str, n: int) -> list[str]:
    """The entry names of a family of ``n`` members, smallest first: ``base-s``, ``base-m``, ``base-l`` for three."""
    return [f"{base}-{suffix}" for suffix in SIZE_SUFFIXES.get(n, [str(i + 1) for i in range(n)])]


def push_family(
    run_dir: str | Path, to: str, name: str | None = None, archive: str | None = None, registry_file: str | Path | None = None
) -> list[tuple[dict[str, Any], str]]:
    """Publishes a family run (``family.params=[...]``: ``frontier.json`` and ``members/<label>/``) as one entry per
    member, named ``NAME-s``, ``-m``, ``-l`` (smallest first), each carrying the family's frontier (its card shows the
    plot and the table; the registry entry names the family, so ``hub list`` shows them together)."""
    from zoo.atomic import save_json_atomic

    run_dir = Path(run_dir)
    rows = json.loads((run_dir / "frontier.json").read_text())
    members = [run_dir / "members" / r["label"] for r in rows]
    missing = [str(m) for m in members if not (m / "model.safetensors").is_file()]
    if missing:
        raise HubError(f"{run_dir} is an unfinished family run ({', '.join(missing)} has no model.safetensors); finish it with resume=true")
    from zoo.hub.bundle import read_config

    base = name or default_name(read_config(members[0]))
    names = family_names(base, len(members))
    frontier = [{**r, "entry": n} for r, n in zip(rows, names)]
    out = []
    with tempfile.TemporaryDirectory(prefix="zoo-family-") as tmp:
        for member, entry_name in zip(members, names):
            staged = Path(tmp) / entry_name
            shutil.copytree(member, staged, ignore=shutil.ignore_patterns("*.lock", ".zoo_run.lock"))
            config = read_config(staged)
            config["family"] = {"name": base, "members": names, "frontier": frontier}
            save_json_atomic(staged / "config.json", config)
            if (run_dir / "frontier.png").is_file():
                shutil.copyfile(run_dir / "frontier.png", staged / "frontier.png")
            out.append(push(staged, to, name=entry_name, archive=archive, registry_file=registry_file))
    return out


def push(
    run_dir: str | Path,
    to: str,
    name: str | None = None,
    archive: str | None = None,
    registry_file: str | Path | None = None,
) -> tuple[dict[str, Any], str]:
    """Publishes ``run_dir`` to ``to``; returns (the registry entry, where the registry was written)."""
    from zoo.hub.bundle import read_config

    run_dir = Path(run_dir)
    name = name or default_name(read_config(run_dir))
    if not NAME_RE.match(name):
        raise HubError(f"--name {name!r} is invalid; allowed: lower-case letters, digits, '_', '.', '-'")
    if archive not in (None, "tar", "tar.gz", "zip"):
        raise HubError(f"--archive {archive} is unknown; allowed: tar, tar.gz, zip")
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        stage = Path(tmp) / name
        config = _stage(run_dir, name, stage)
        if archive:
            packed = pack(stage, Path(tmp) / f"{name}.{archive}")
            uploads = [(f"{name}.{archive}", packed)]
        else:
            uploads = [(f"{name}/{f}", stage / f) for f in BUNDLE_FILES]
            if config.get("family") and (run_dir / "frontier.png").is_file():  # the family's plot, shown by its card
                shutil.copyfile(run_dir / "frontier.png", stage / "frontier.png")
                uploads.append((f"{name}/frontier.png", stage / "frontier.png"))
        if to.startswith(("http://", "https://")):
            return _push_http(config, name, uploads, to.rstrip("/") + "/")
        target = Path(urllib.request.url2pathname(urllib.parse.urlparse(to).path)) if to.startswith("file://") else Path(to)
        return _push_dir(config, name, uploads, target, Path(registry_file) if registry_file else target / "registry.json")


def _push_dir(
    config: dict[str, Any], name: str, uploads: list[tuple[str, Path]], target: Path, registry: Path
) -> tuple[dict[str, Any], str]:
    files = []
    for rel, src in uploads:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        url = os.path.relpath(dest.resolve(), registry.resolve().parent)
        files.append({"name": Path(rel).name, "sha256": sha256_file(dest), "size": dest.stat().st_size, "urls": [url]})
    entry = entry_for(config, name, files)
    registry.parent.mkdir(parents=True, exist_ok=True)
    upsert_registry(registry, entry)
    return entry, str(registry)


def _http(method: str, url: str, body: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": "zoo-hub"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
        return r.read()


def _push_http(config: dict[str, Any], name: str, uploads: list[tuple[str, Path]], base: str) -> tuple[dict[str, Any], str]:
    files = []
    try:
        for rel, src in uploads:
            _http("PUT", urllib.parse.urljoin(base, rel), src.read_bytes())
            files.append({"name": Path(rel).name, "sha256": sha256_file(src), "size": src.stat().st_size, "urls": [rel]})
        reg_url = urllib.parse.urljoin(base, "registry.json")
        try:
            data = json.loads(_http("GET", reg_url))
            parse_registry(data, reg_url)
            entries = [e for e in data["entries"] if e["name"] != name]
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            entries = []
        entry = entry_for(config, name, files)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "registry.json"
            write_registry(path, entries + [entry])
            _http("PUT", reg_url, path.read_bytes())
    except (OSError, urllib.error.URLError) as e:
        raise HubError(f"push to {base} failed: {e}") from None
    return entry, reg_url
