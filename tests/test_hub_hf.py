"""``hf://OWNER/REPO/PATH[@REVISION]`` registry URLs, fetched by huggingface_hub from a
Hub-compatible server on loopback (tests/helpers/hf_server.py).

huggingface_hub reads ``HF_ENDPOINT`` / ``HF_HOME`` when it is imported, so every download
runs ``python -m zoo.hub`` in a child process with those set (and ``HOME`` in the test's
tmp directory: nothing of the user's caches or tokens is read or written).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.cli import ZooCli, one_error_line
from helpers.data import tiny_bundle
from helpers.hf_server import HfServer, commit_id

import zoo
from zoo.hub.download import sha256_file
from zoo.hub.publish import push

needs_hf = pytest.mark.requires("huggingface_hub")

REPO = "zoo-org/tiny-hf"
FILES = ("config.json", "model.safetensors", "README.md")


@dataclass
class HfHub:
    server: HfServer
    tmp: Path
    registry: Path
    bundles: dict[str, Path]  # revision -> the bundle it holds
    env: dict[str, str | None]  # the child's environment: these over this process's (None: removed)
    zoo_cli: ZooCli

    def write_registry(self, suffix: str, name: str = "tiny-hf", revision: str = "v1") -> None:
        """One entry whose files are listed only as ``hf://REPO/FILE{suffix}``, checksums of ``revision``."""
        entry = json.loads((self.tmp / f"entry-{revision}.json").read_text())
        entry["name"] = name
        for f in entry["files"]:
            f["urls"] = [f"hf://{REPO}/{f['name']}{suffix}"]
        self.registry.write_text(json.dumps({"schema_version": 1, "entries": [entry]}))

    def cli(self, *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
        """``python -m zoo.hub --registry REGISTRY args...`` (with ``prelude`` run first in the same process)."""
        return self.zoo_cli.run("--registry", self.registry, *args, module="zoo.hub", prelude=prelude or None, env=self.env, timeout=120)


@pytest.fixture
def hf(tmp_path: Path, repo_root: Path, zoo_cli: ZooCli):  # type: ignore[no-untyped-def]
    """A loopback Hub holding REPO at revisions v1 (seed 0) and main (seed 1); a registry file; the child's env."""
    bundles = {}
    for revision, seed in (("v1", 0), ("main", 1)):
        bundles[revision] = tiny_bundle(tmp_path / f"run-{revision}", seed=seed)
        entry, _ = push(str(bundles[revision]), str(tmp_path / f"pushed-{revision}"), name="tiny-hf")
        (tmp_path / f"entry-{revision}.json").write_text(json.dumps(entry))
        assert [f["name"] for f in entry["files"]] == list(FILES)
        shutil.copytree(tmp_path / f"pushed-{revision}" / "tiny-hf", tmp_path / "hub" / REPO / revision)
        shutil.rmtree(tmp_path / f"pushed-{revision}")  # the Hub is the only place the files are
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("HF_", "HUGGING_FACE_", "ZOO_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        ZOO_HOME=str(tmp_path / "zoo"),
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(repo_root),
    )
    with HfServer(tmp_path / "hub") as server:
        env["HF_ENDPOINT"] = server.endpoint
        hub = HfHub(server, tmp_path, tmp_path / "registry.json", bundles, env, zoo_cli)
        hub.write_registry("@v1")
        yield hub


def _same_outputs(a: Path, b: Path) -> bool:
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(zoo.from_pretrained(str(a)).eval()(x), zoo.from_pretrained(str(b)).eval()(x))


@needs_hf
def test_cli_downloads_a_revision_through_the_hub_and_hits_the_cache(hf: HfHub, one_thread: None) -> None:
    out = hf.tmp / "out"
    r = hf.cli("download", "tiny-hf", "--dir", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out)
    entry = json.loads((hf.tmp / "entry-v1.json").read_text())
    for f in entry["files"]:
        assert sha256_file(out / f["name"]) == f["sha256"], f["name"]
    assert not list(out.glob("*.part"))
    assert _same_outputs(out, hf.bundles["v1"]) and not _same_outputs(out, hf.bundles["main"])

    hub = hf.server.requests("hub")
    assert {(q.method, q.file) for q in hub} == {("HEAD", f) for f in FILES} | {("GET", "config.json"), ("GET", "README.md")}
    assert {q.revision for q in hub} == {"v1"}  # '@v1' of the URL, never the default branch
    cdn = hf.server.requests("cdn")  # the weights came through the redirect to the large-file host
    assert [(q.method, q.file) for q in cdn] == [("GET", next(f["sha256"] for f in entry["files"] if f["name"] == "model.safetensors"))]
    snapshot = hf.tmp / "hf" / "hub" / "models--zoo-org--tiny-hf"
    assert (snapshot / "refs" / "v1").read_text() == commit_id(REPO, "v1")  # huggingface_hub's own cache, under HF_HOME
    assert not (hf.tmp / "home" / ".cache" / "huggingface").exists()

    before = len(hf.server.log)
    r = hf.cli("download", "tiny-hf", "--dir", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(hf.server.log) == before  # every file already matched its sha256: no request


@needs_hf
@pytest.mark.parametrize("revision", ["main", "commit"])
def test_default_branch_and_commit_id_revisions(hf: HfHub, revision: str) -> None:
    if revision == "main":
        hf.write_registry("", revision="main")  # no '@': the default branch
    else:
        hf.write_registry("@" + commit_id(REPO, "v1"))
    r = hf.cli("download", "tiny-hf", "--quiet")  # into $ZOO_HOME's cache this time
    assert r.returncode == 0, r.stderr
    d = Path(r.stdout.strip().splitlines()[-1])
    assert d.is_relative_to(hf.tmp / "zoo")
    assert _same_outputs(d, hf.bundles["main" if revision == "main" else "v1"])
    expected = "main" if revision == "main" else commit_id(REPO, "v1")
    assert {q.revision for q in hf.server.requests("hub")} == {expected}


@needs_hf
def test_tampered_file_on_the_hub_is_refused_by_sha256(hf: HfHub) -> None:
    weights = hf.tmp / "hub" / REPO / "v1" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte changed
    weights.write_bytes(bytes(data))
    out = hf.tmp / "out"
    r = hf.cli("download", "tiny-hf", "--dir", str(out), "--quiet")
    err = one_error_line(r, prog="zoo.hub")
    assert err.startswith("zoo.hub: error: tiny-hf/model.safetensors: sha256 mismatch from hf://zoo-org/tiny-hf/model.safetensors@v1"), err
    assert "deleted" in err
    assert not (out / "model.safetensors").exists() and not (out / "model.safetensors.part").exists()
    assert (out / "config.json").is_file()  # the untouched file before it was kept


@needs_hf
def test_unknown_revision_is_one_line_naming_it(hf: HfHub) -> None:
    hf.write_registry("@v9")
    r = hf.cli("download", "tiny-hf", "--quiet")
    err = one_error_line(r, prog="zoo.hub")
    assert "tiny-hf/config.json: download failed (hf://zoo-org/tiny-hf/config.json@v9" in err, err
    assert "Revision Not Found" in err and "/resolve/v9/config.json" in err, err


def test_without_huggingface_hub_the_error_says_what_to_install(hf: HfHub) -> None:
    r = hf.cli("download", "tiny-hf", "--quiet", prelude="import sys; sys.modules['huggingface_hub'] = None")
    err = one_error_line(r, prog="zoo.hub")
    assert err.startswith("zoo.hub: error: tiny-hf/config.json: download failed (hf://zoo-org/tiny-hf/config.json@v1:"), err
    assert "pip install huggingface_hub" in err, err
    assert hf.server.log == []


@needs_hf
def test_a_broken_mirror_is_one_line_and_the_next_url_is_tried(hf: HfHub) -> None:
    hf.server.loop_revisions.add("loop")  # HEAD redirects to itself until the client gives up
    hf.write_registry("@loop")
    r = hf.cli("download", "tiny-hf", "--quiet")
    err = one_error_line(r, prog="zoo.hub")
    assert "tiny-hf/config.json: download failed (hf://zoo-org/tiny-hf/config.json@loop: TooManyRedirects" in err, err

    registry = json.loads(hf.registry.read_text())
    for f in registry["entries"][0]["files"]:
        f["urls"].append(f["urls"][0].replace("@loop", "@v1"))
    hf.registry.write_text(json.dumps(registry))
    r = hf.cli("download", "tiny-hf", "--dir", str(hf.tmp / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert _same_outputs(hf.tmp / "out", hf.bundles["v1"])
