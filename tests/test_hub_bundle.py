"""Bundles: tensors checked by name, archives extracted safely, model cards, registry schema, timm."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from helpers.data import tiny_bundle
from safetensors.torch import load_file, save_file

import zoo
from zoo.hub.archive import pack, unpack
from zoo.hub.bundle import BundleError, load_bundle
from zoo.hub.download import HubError
from zoo.hub.publish import push
from zoo.hub.registry import parse_registry


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_REGISTRY", raising=False)


def test_missing_tensor_is_refused_by_name(tmp_path: Path) -> None:
    d = tiny_bundle(tmp_path / "b")
    state = load_file(str(d / "model.safetensors"))
    del state["net.classifier.bias"]
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(BundleError, match=r"lacks tensor 'net.classifier.bias'$"):
        load_bundle(d)


def test_extra_tensor_is_refused_by_name(tmp_path: Path) -> None:
    d = tiny_bundle(tmp_path / "b")
    state = load_file(str(d / "model.safetensors"))
    state["net.backdoor.weight"] = torch.zeros(3)
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(BundleError, match=r"unexpected tensor 'net.backdoor.weight'"):
        load_bundle(d)
    with pytest.raises(BundleError, match="unexpected tensor 'net.backdoor.weight'"):
        push(str(d), str(tmp_path / "served"))  # nothing broken gets published
    assert not (tmp_path / "served").exists()


def test_bundle_has_card_and_archive_round_trip(tmp_path: Path) -> None:
    d = tiny_bundle(tmp_path / "b")
    card = (d / "README.md").read_text()
    assert "| test_accuracy | 0.5000 |" in card and "darts" in card and "zoo.from_pretrained" in card
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["preprocessing"]["input_size"] == [1, 8, 8] and cfg["license"] == "Apache-2.0"
    x = torch.rand(2, 1, 8, 8)
    ref = zoo.from_pretrained(str(d))(x)
    for suffix in ("tar", "tar.gz", "zip"):
        archive = pack(d, tmp_path / f"bundle.{suffix}")
        assert torch.equal(zoo.from_pretrained(str(archive))(x), ref)


def _evil_tar(path: Path, member: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> Path:
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo("config.json")
        info.size = 2
        t.addfile(info, io.BytesIO(b"{}"))
        info = tarfile.TarInfo(member)
        info.type = kind
        info.linkname = link
        info.size = 0 if link else 4
        t.addfile(info, None if link else io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize(
    "member,kind,link,why",
    [
        ("../evil.txt", tarfile.REGTYPE, "", r"'\.\./evil\.txt' leaves the extraction directory"),
        ("sub/../../evil.txt", tarfile.REGTYPE, "", "leaves the extraction directory"),
        ("/tmp/evil.txt", tarfile.REGTYPE, "", "has an absolute path"),
        ("model.safetensors", tarfile.SYMTYPE, "/etc/passwd", "is a link or special file"),
    ],
)
def test_tar_path_traversal_is_refused(tmp_path: Path, member: str, kind: bytes, link: str, why: str) -> None:
    archive = _evil_tar(tmp_path / "evil.tar", member, kind, link)
    dest = tmp_path / "out" / "x"
    with pytest.raises(HubError, match=why):
        unpack(archive, dest)
    assert not (tmp_path / "out" / "evil.txt").exists() and not (dest / "config.json").exists()
    with pytest.raises(HubError, match=why):
        zoo.from_pretrained(str(archive))


def test_zip_path_traversal_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("../../evil.txt", "evil")
    with pytest.raises(HubError, match="leaves the extraction directory"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not list((tmp_path / "out").glob("*"))


def test_registry_schema_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="schema_version 2; this zoo reads up to 1: upgrade zoo"):
        parse_registry({"schema_version": 2, "entries": []}, "r.json")
    with pytest.raises(HubError, match=r"entry 0 \(x\) lacks the field 'files'"):
        parse_registry({"schema_version": 1, "entries": [{"name": "x", "task": "classification", "model": {}}]}, "r.json")
    bad = {"name": "x", "task": "classification", "model": {}, "files": [{"name": "../m", "sha256": "0" * 64, "urls": []}]}
    with pytest.raises(HubError, match="must be a plain file name"):
        parse_registry({"schema_version": 1, "entries": [bad]}, "r.json")


def test_builtin_registry_lists_published_and_searched_entries() -> None:
    from zoo.hub.registry import load_entries

    entries = load_entries()
    assert {"darts_v1", "darts_v2", "nasnet_a", "amoebanet_a", "pnas"} <= set(entries)
    assert all(not entries[n].has_weights for n in ("darts_v1", "darts_v2", "nasnet_a", "amoebanet_a", "pnas"))
    searched = [e for e in entries.values() if e.has_weights]
    assert searched, "the zoo ships at least one searched checkpoint"
    for e in searched:
        for f in e.files:
            assert Path(f.urls[0]).is_file(), f"{e.name}: release file {f.urls[0]} is missing"
        assert e.data["reproduce"].startswith("python -m zoo")


def test_timm_create_model_loads_through_the_zoo_cache(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    served = tmp_path / "served"
    push(str(tiny_bundle(tmp_path / "run")), str(served), name="tiny-timm")
    names = zoo.register_timm(str(served))
    assert "zoo_tiny_timm" in names and "zoo_darts_v2" in names
    x = torch.rand(2, 1, 8, 8)
    ref = zoo.from_pretrained(str(tmp_path / "run")).eval()(x)
    m = timm.create_model("zoo_tiny_timm", pretrained=True).eval()
    assert torch.equal(m(x), ref)
    assert m.pretrained_cfg["file"].startswith(str(tmp_path / "home"))  # the verified copy in the zoo cache
    assert m.pretrained_cfg["label_names"] == ("a", "b", "c")
    m5 = timm.create_model("zoo_tiny_timm", pretrained=True, num_classes=5).eval()
    assert m5(x).shape == (2, 5)
    assert torch.equal(m5.state_dict()["net.stem0.0.weight"], m.state_dict()["net.stem0.0.weight"])
    feats = timm.create_model("zoo_tiny_timm", pretrained=True, features_only=True).eval()
    plain = zoo.from_pretrained(str(tmp_path / "run")).eval()
    ours = plain.forward_features(x)  # normalisation included
    got = feats(x)
    assert len(got) == len(ours) == len(feats.feature_info.channels()) and all(torch.equal(a, b) for a, b in zip(got, ours))
    assert feats.feature_info.channels() == [f.shape[1] for f in ours] and feats.feature_info.reduction() == [
        f["reduction"] for f in plain.feature_info
    ]
    last = timm.create_model("zoo_tiny_timm", pretrained=True, features_only=True, out_indices=(len(ours) - 1,)).eval()
    assert torch.equal(last(x)[0], ours[-1])
    with pytest.raises(HubError, match="architecture-only"):
        timm.create_model("zoo_darts_v2", pretrained=True)


def test_bundle_files_get_the_mode_the_umask_allows(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (mode 0600); renamed into place they must be readable like any file."""
    import os

    from zoo.hub.archive import pack
    from zoo.hub.bundle import save_bundle
    from zoo.models import create_model

    old = os.umask(0o022)
    try:
        model = create_model("darts_v2", num_classes=3, init_channels=4, layers=2)
        save_bundle(
            tmp_path / "b",
            model,
            {"task": "classification", "model": {"arch": "darts_v2", "num_classes": 3, "init_channels": 4, "layers": 2}},
        )
        out = pack(tmp_path / "b", tmp_path / "b.tar.gz")
        for p in [*(tmp_path / "b").iterdir(), out]:
            assert p.stat().st_mode & 0o777 == 0o644, (p.name, oct(p.stat().st_mode))
    finally:
        os.umask(old)


def _card_section(metrics: dict) -> str:
    from zoo.hub.card import render_card

    card = render_card({"task": "classification", "metrics": metrics})
    start = card.find("## Against")
    return card[start : card.index("\n## ", start + 1)] if start >= 0 else ""


def test_card_puts_the_runs_hand_made_model_beside_the_searched_one() -> None:
    base = {"model": "timm ResNet-18 at widths 4-32", "accuracy": 0.81, "loss": 0.5, "params": 10_100, "params_within_tolerance": True}
    metrics = {"test_accuracy": 0.86, "test_loss": 0.4, "params": 10_000, "baseline": base, "searched_minus_baseline": {"accuracy": 0.05}}
    section = _card_section(metrics)
    assert section.startswith("## Against the same-size hand-made model")
    assert "timm ResNet-18 at widths 4-32, 10,100 parameters (1.01x this model's 10,000)" in section
    assert "| accuracy | 0.8600 | 0.8100 | +0.0500 |" in section and "| loss |" not in section  # only what the run compared

    older = _card_section({**metrics, "searched_minus_baseline": None})  # a run from before the comparison was recorded
    assert "| accuracy | 0.8600 | 0.8100 | +0.0500 |" in older and "| loss | 0.4000 | 0.5000 | -0.1000 |" in older

    fixed = _card_section({**metrics, "baseline": {**base, "params": 11_000_000, "params_within_tolerance": False, "model": None}})
    assert fixed.startswith("## Against the hand-made model of its run") and "the hand-made model, 11,000,000 parameters (1100.00x" in fixed

    assert _card_section({**metrics, "baseline": {**base, "accuracy": float("nan")}}) == ""  # nothing comparable: no section
    assert _card_section({k: v for k, v in metrics.items() if k != "baseline"}) == ""
