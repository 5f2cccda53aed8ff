"""The hub against a real HTTP server on loopback: download, cache hit, resume, checksum,
concurrent downloads, push over HTTP, and the CLI."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch
from helpers.data import tiny_bundle
from helpers.hub_server import HubServer

import zoo
from zoo.hub.api import download, entry_dir
from zoo.hub.download import HubError, sha256_file
from zoo.hub.publish import push
from zoo.hub.registry import get_entry


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A served directory with one entry 'tiny' (three bundle files), a fresh ZOO_HOME."""
    served = tmp_path / "served"
    push(str(tiny_bundle(tmp_path / "run")), str(served), name="tiny")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_REGISTRY", raising=False)
    with HubServer(served) as server:
        yield server, server.url + "registry.json"


def test_download_then_cache_hit_makes_no_request(hub) -> None:  # type: ignore[no-untyped-def]
    server, reg = hub
    d = download("tiny", registry=reg, progress=False)
    assert d == entry_dir(get_entry("tiny", reg))
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in d.iterdir()}
    assert server.requests["tiny/model.safetensors"] == 1
    size = (d / "model.safetensors").stat().st_size
    assert server.bytes_sent["tiny/model.safetensors"] == size
    model = zoo.from_pretrained("tiny", registry=reg, progress=False)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    zoo.create_model("tiny", pretrained=True, registry=reg)
    assert server.requests["tiny/model.safetensors"] == 1  # served from the cache twice
    assert not list(d.glob("*.part"))


def test_interrupted_download_resumes_with_range(hub) -> None:  # type: ignore[no-untyped-def]
    server, reg = hub
    size = get_entry("tiny", reg).files[1].size
    assert get_entry("tiny", reg).files[1].name == "model.safetensors"
    cut = size // 2
    server.cut_after["tiny/model.safetensors"] = cut
    with pytest.raises(HubError, match=f"stopped after {cut} of {size} bytes.* kept .* to resume"):
        download("tiny", registry=reg, progress=False)
    part = entry_dir(get_entry("tiny", reg)) / "model.safetensors.part"
    assert part.stat().st_size == cut
    d = download("tiny", registry=reg, progress=False)
    assert ("tiny/model.safetensors", cut) in server.range_starts
    assert server.bytes_sent["tiny/model.safetensors"] == size  # the first half, then only the rest
    assert server.requests["tiny/model.safetensors"] == 2
    assert sha256_file(d / "model.safetensors") == get_entry("tiny", reg).files[1].sha256
    assert not part.exists()


def test_sha256_mismatch_is_refused_and_deleted(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, reg = hub
    served = server.root
    data = json.loads((served / "registry.json").read_text())
    data["entries"][0]["files"][1]["sha256"] = "0" * 64
    (served / "registry.json").write_text(json.dumps(data))
    with pytest.raises(HubError) as err:
        download("tiny", registry=reg, progress=False)
    msg = str(err.value)
    assert "sha256 mismatch" in msg and "model.safetensors" in msg and "deleted" in msg and "\n" not in msg
    d = entry_dir(get_entry("tiny", reg))
    assert not (d / "model.safetensors").exists() and not (d / "model.safetensors.part").exists()


def _download_in_child(reg: str, out: str) -> None:
    try:
        d = download("tiny", registry=reg, progress=False)
        Path(out).write_text(sha256_file(d / "model.safetensors"))
    except Exception as e:  # reported to the parent through the exit code and file
        Path(out).write_text(f"error: {e}")
        os._exit(1)
    os._exit(0)


def test_two_processes_download_the_same_entry(hub, tmp_path: Path, multiprocess) -> None:  # type: ignore[no-untyped-def]
    server, reg = hub
    server.chunk_delay = 0.02  # both processes are in flight at the same time
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_download_in_child, args=(reg, str(tmp_path / f"out{i}"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    expected = get_entry("tiny", reg).files[1].sha256
    assert [p.exitcode for p in procs] == [0, 0], [(tmp_path / f"out{i}").read_text() for i in range(2)]
    assert [(tmp_path / f"out{i}").read_text() for i in range(2)] == [expected, expected]
    assert server.requests["tiny/model.safetensors"] == 1  # the second process waited on the lock, then hit the cache


def test_push_over_http_put_then_download(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, reg = hub
    entry, where = push(str(tiny_bundle(tmp_path / "run2", seed=1)), server.url + "more/", name="tiny2", archive="tar")
    assert where == server.url + "more/registry.json"
    assert (server.root / "more" / "tiny2.tar").is_file()
    d = download("tiny2", registry=where, progress=False)
    assert (d / "model.safetensors").is_file() and (d / "config.json").is_file()
    a = zoo.from_pretrained(str(tmp_path / "run2")).eval()
    b = zoo.from_pretrained("tiny2", registry=where).eval()
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(a(x), b(x))


def test_cli_list_info_download(hub, tmp_path: Path, capsys: pytest.CaptureFixture[str], zoo_cli) -> None:  # type: ignore[no-untyped-def]
    from zoo.hub.__main__ import main

    server, reg = hub
    assert main(["--registry", reg, "list", "--task", "classification"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "DATASET", "METRIC", "PARAMS", "WEIGHTS"]
    assert any(l.startswith("tiny ") for l in lines) and any(l.startswith("darts_v2 ") and "arch only" in l for l in lines)
    assert main(["--registry", reg, "list", "--task", "detection"]) == 0
    det = capsys.readouterr().out.splitlines()
    assert any(l.startswith("trees-fpn-darts ") and "mAP@0.5" in l for l in det) and not any(l.startswith("tiny ") for l in det)
    assert main(["--registry", reg, "list", "--task", "segmentation"]) == 0
    seg = capsys.readouterr().out.splitlines()
    assert any(l.startswith("nuclei-autodeeplab-darts ") and "mIoU" in l for l in seg) and not any(l.startswith("tiny ") for l in seg)
    assert main(["--registry", reg, "list", "--task", "no_such_task"]) == 0
    assert capsys.readouterr().out.strip() == "no zoo entries for task no_such_task"
    assert main(["info", "tiny", "--json", "--registry", reg]) == 0
    assert json.loads(capsys.readouterr().out)["files"][1]["name"] == "model.safetensors"
    assert main(["info", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown zoo entry 'no_such_model'" in err
    # the real command line, in its own process, with the registry from the environment
    out = zoo_cli.run("download", "tiny", "--dir", tmp_path / "mine", "--quiet", module="zoo.hub", env={"ZOO_REGISTRY": reg}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "mine" and (tmp_path / "mine" / "model.safetensors").is_file()
    assert server.requests["tiny/model.safetensors"] == 1


def test_architecture_only_entry_has_no_weights() -> None:
    with pytest.raises(HubError, match="^darts_v2 is architecture-only: no weights"):
        zoo.create_model("darts_v2", pretrained=True)
    m = zoo.create_model("darts_v2", init_channels=4, layers=3)  # registry arguments, narrowed for speed
    assert m.eval()(torch.rand(1, 3, 8, 8)).shape == (1, 10)
