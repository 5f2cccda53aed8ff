"""``python -m zoo.hub`` given what a new user types (issue 20 item 7): ``export --out`` naming an
existing directory writes ``NAME.onnx`` in it (as ``cp`` puts a file in a directory), a bad
``--input-size`` is refused in one line before anything is fetched, an unwritable ``--out`` is one
line too, and ``download --dir`` leaves the entry's files there and nothing else (no ``*.lock``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.data import tiny_bundle

from zoo.hub.__main__ import main
from zoo.hub.registry import get_entry


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty zoo cache, the built-in registry only."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_REGISTRY", raising=False)
    return tmp_path / "home"


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zoo.hub: error: "), err
    return err.strip()


@pytest.mark.requires("onnx", "onnxruntime")
def test_export_into_an_existing_directory_writes_name_onnx_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tiny_bundle(tmp_path / "tiny")
    out = tmp_path / "exports"
    out.mkdir()
    assert main(["export", str(bundle), "--format", "onnx", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["tiny.onnx"]
    assert f"-> {out / 'tiny.onnx'} " in capsys.readouterr().out


@pytest.mark.parametrize("size", [["0", "0"], ["-32", "64"]])
def test_a_bad_input_size_is_refused_before_the_entry_is_fetched(home: Path, size: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "cartpole-ppo-evolution", "--format", "onnx", "--input-size", *size]) == 2
    assert one_line(capsys) == f"zoo.hub: error: --input-size {' '.join(size)} is invalid; allowed: two positive integers H W"
    assert not home.exists() or not any(home.rglob("*")), sorted(map(str, home.rglob("*")))


def test_an_out_path_under_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tiny_bundle(tmp_path / "tiny")
    (tmp_path / "a_file").write_text("x")
    assert main(["export", str(bundle), "--format", "torchscript", "--out", str(tmp_path / "a_file" / "m.pt"), "--quiet"]) == 2
    assert str(tmp_path / "a_file") in one_line(capsys)


def test_download_to_a_directory_leaves_only_the_entry_files(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    assert main(["download", "digits-darts", "--dir", str(mine), "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()) == mine
    assert sorted(p.name for p in mine.iterdir()) == sorted(f.name for f in get_entry("digits-darts").files)
    # the cache too: no lock files beside what it holds
    assert main(["download", "digits-darts", "--quiet"]) == 0
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".lock")]
