"""Export a bundle's model to ONNX or TorchScript, checking the result against PyTorch.

ONNX goes through ``torch.onnx.export``'s TorchScript-based exporter (``dynamo=False``:
it needs no extra package) with a dynamic batch axis; where ``onnxruntime`` is
installed (``pip install zoo[export]``) the exported graph is run on two random batches
of different sizes and every output is compared with PyTorch's. TorchScript is
``torch.jit.trace``, checked the same way.

Detection models export as ``(boxes, scores)``: boxes (N, P, 4) xyxy pixels clipped to
the image and per-class scores (N, P, K) for every location P of every level, i.e. all of
:func:`tasks.detection.model.decode` before its score threshold and NMS, which the consumer runs.
Their graphs take one fixed spatial size (the neck's resampling to each level's size and
the head's point grid are traced for it); ``input_size`` picks another at export time.

Export traces and checks on the CPU: a model on a GPU is exported from a CPU copy (it stays
where it is), so the file and its check are the same wherever the model was trained.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.device import cpu_copy
from zoo.hub.download import HubError
from zoo.hub.facts import hub_facts

FORMATS = ("onnx", "torchscript")


def _tensors(out: Any) -> tuple[torch.Tensor, ...]:
    """A model's output as a tuple of tensors (what the exported graph returns, in order)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        return tuple(out)
    raise HubError(f"the model returns {type(out).__name__}, not tensors; its task has no export adapter (zoo.hub.facts.HUB_FACTS)")


def _max_diff(got: Any, ref: tuple[torch.Tensor, ...], names: list[str], out: Path, atol: float, rtol: float) -> tuple[float, bool]:
    """Largest absolute difference over every output, and whether any output's exceeds
    ``atol + rtol * max|torch output|`` (its own scale: box corners come from differences of
    pixel coordinates, so their rounding error follows the image size, not the corner's value);
    a missing output or another shape is an error."""
    got = [torch.as_tensor(g) for g in got]
    if len(got) != len(ref):
        raise HubError(f"{out}: the exported graph returns {len(got)} outputs, PyTorch {len(ref)}")
    diff, bad = 0.0, False
    for name, g, r in zip(names, got, ref):
        if tuple(g.shape) != tuple(r.shape):
            raise HubError(f"{out}: exported output {name!r} has shape {tuple(g.shape)}, PyTorch's {tuple(r.shape)}")
        if r.numel():
            err = (g.to(r.dtype) - r).abs()
            diff = max(diff, float(err.max()))
            bad = bad or float(err.max()) > atol + rtol * float(r.abs().max())
    return diff, bad


def check_export_options(fmt: str, input_size: Sequence[int] | None = None) -> None:
    """The format and ``input_size`` (H, W) an export is asked for, checked before a model is fetched or loaded."""
    if fmt not in FORMATS:
        raise HubError(f"--format {fmt} is unknown; allowed: {', '.join(FORMATS)}")
    if input_size is not None and (len(input_size) != 2 or any(int(v) < 1 for v in input_size)):
        raise HubError(f"--input-size {' '.join(map(str, input_size))} is invalid; allowed: two positive integers H W")


def export_model(
    model: nn.Module,
    config: dict[str, Any],
    out: str | Path,
    fmt: str = "onnx",
    opset: int = 17,
    atol: float = 1e-4,
    check: bool = True,
    input_size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Writes ``out`` and returns a report: format, path, input shape, output shapes and the
    max abs difference over every output (if checked).

    What is exported is the task adapter's :meth:`~zoo.hub.facts.HubFacts.export_module`
    (a detector becomes ``(boxes, scores)``). The batch axis is dynamic; the spatial size is
    the one recorded in ``config`` (or ``input_size``, (H, W)) and, for detection, fixed.
    The check runs the file on the export batch and on a batch of another size.
    """
    check_export_options(fmt, input_size)
    adapter = hub_facts(str(config.get("task")))
    module = adapter.export_module(cpu_copy(model).eval()).eval()
    x = adapter.example_input(config, size=input_size)
    x2 = adapter.example_input(config, batch=3, seed=1, size=input_size)  # another batch size: the batch axis is dynamic
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ref = _tensors(module(x))
    names = adapter.output_names()
    names = names[: len(ref)] + [f"output{i}" for i in range(len(names), len(ref))]
    report: dict[str, Any] = {
        "format": fmt,
        "path": str(out),
        "input_shape": [int(s) for s in x.shape],
        "outputs": {n: [int(s) for s in r.shape] for n, r in zip(names, ref)},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches and deprecations
        if fmt == "onnx":
            torch.onnx.export(
                module,
                (x,),
                str(out),
                dynamo=False,
                input_names=["input"],
                output_names=names,
                dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                opset_version=opset,
            )
        else:
            traced = torch.jit.trace(module, (x,), check_trace=False)
            traced.save(str(out))
    if not check:
        return report
    with torch.no_grad():
        ref2 = _tensors(module(x2))
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            report["checked"] = "skipped: onnxruntime is not installed (pip install 'zoo[export]')"
            return report
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = [sess.run(None, {"input": x.numpy()}), sess.run(None, {"input": x2.numpy()})]
    else:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(str(out))  # our own file, just written: TorchScript's loader, not pickle
            got = [_tensors(loaded(x)), _tensors(loaded(x2))]
    checks = [_max_diff(g, r, names, out, atol, adapter.export_rtol) for g, r in zip(got, (ref, ref2))]
    diff, bad = max(d for d, _ in checks), any(b for _, b in checks)
    report["max_abs_diff"] = diff
    report["checked"] = "MISMATCH" if bad else "ok"
    if bad:
        tol = f"{atol:g}" + (f" + {adapter.export_rtol:g} * max|output|" if adapter.export_rtol else "")
        raise HubError(f"{out}: exported outputs differ from PyTorch's by {diff:.3g} (> {tol})")
    return report
