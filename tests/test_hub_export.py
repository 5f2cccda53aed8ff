"""Export: ONNX outputs match PyTorch's under onnxruntime; TorchScript traces and matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.data import tiny_bundle

import zoo
from zoo.hub.__main__ import main


@pytest.mark.requires("onnx", "onnxruntime")
def test_onnx_export_matches_pytorch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime as ort

    d = tiny_bundle(tmp_path / "b")
    out = tmp_path / "m.onnx"
    assert main(["export", str(d), "--format", "onnx", "--out", str(out)]) == 0
    assert "check ok" in capsys.readouterr().out
    model = zoo.from_pretrained(str(d)).eval()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(5, 1, 8, 8)  # a batch size the export never saw
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_export_matches_pytorch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tiny_bundle(tmp_path / "b")
    out = tmp_path / "m.pt"
    assert main(["export", str(d), "--format", "torchscript", "--out", str(out)]) == 0
    assert "check ok" in capsys.readouterr().out
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(x), zoo.from_pretrained(str(d)).eval()(x), atol=1e-5)


def test_export_of_unknown_name_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "no_such_entry", "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo.hub: error: unknown zoo entry 'no_such_entry'") and err.count("\n") == 1
