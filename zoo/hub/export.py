"""Export a bundle's model to ONNX or TorchScript, checking the result against PyTorch.

ONNX goes through ``torch.onnx.export``'s TorchScript-based exporter (``dynamo=False``:
it needs no extra package) with a dynamic batch axis; where ``onnxruntime`` is
installed (``pip install zoo[export]``) the exported graph is run on a random batch
and its outputs are compared with PyTorch's. TorchScript is ``torch.jit.trace``.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.hub.adapters import hub_task
from zoo.hub.download import HubError

FORMATS = ("onnx", "torchscript")


def export_model(
    model: nn.Module,
    config: dict[str, Any],
    out: str | Path,
    fmt: str = "onnx",
    opset: int = 17,
    atol: float = 1e-4,
    check: bool = True,
) -> dict[str, Any]:
    """Writes ``out`` and returns a report: format, path, input shape, max abs difference (if checked)."""
    if fmt not in FORMATS:
        raise HubError(f"--format {fmt} is unknown; allowed: {', '.join(FORMATS)}")
    adapter = hub_task(str(config.get("task")))
    model = model.eval()
    x = adapter.example_input(config)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ref = model(x)
    report: dict[str, Any] = {"format": fmt, "path": str(out), "input_shape": [int(s) for s in x.shape]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches and deprecations
        if fmt == "onnx":
            torch.onnx.export(
                model,
                (x,),
                str(out),
                dynamo=False,
                input_names=["input"],
                output_names=adapter.output_names(),
                dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in adapter.output_names()}},
                opset_version=opset,
            )
        else:
            traced = torch.jit.trace(model, (x,), check_trace=False)
            traced.save(str(out))
    if not check:
        return report
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            report["checked"] = "skipped: onnxruntime is not installed (pip install 'zoo[export]')"
            return report
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        x2 = adapter.example_input(config, batch=3, seed=1)  # another batch size: the batch axis is dynamic
        with torch.no_grad():
            ref2 = model(x2)
        got = [torch.from_numpy(sess.run(None, {"input": x.numpy()})[0]), torch.from_numpy(sess.run(None, {"input": x2.numpy()})[0])]
        diff = max(float((got[0] - ref).abs().max()), float((got[1] - ref2).abs().max()))
    else:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(str(out))  # our own file, just written: TorchScript's loader, not pickle
            diff = float((loaded(x) - ref).abs().max())
    report["max_abs_diff"] = diff
    report["checked"] = "ok" if diff <= atol else "MISMATCH"
    if diff > atol:
        raise HubError(f"{out}: exported outputs differ from PyTorch's by {diff:.3g} (> {atol:g})")
    return report
