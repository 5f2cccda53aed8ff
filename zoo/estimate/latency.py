"""Latency of a built model, measured on this machine (the ``latency`` objective outside benchmark mode).

The median of ``repeats`` timed forward passes of one example in eval mode, after ``warmup``
untimed ones, on the run's device (the task's: the CLI's ``device=``; on CUDA each pass is timed
to its end, the device synchronised) with torch's current thread setting (the CLI's ``threads=``).
The median is robust to the odd slow pass on a shared machine; it is a relative figure for
comparing candidates measured in the same run, not a deployment number.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def measure_latency_ms(
    model: nn.Module, example: torch.Tensor, warmup: int = 2, repeats: int = 10, device: torch.device | None = None
) -> float:
    """Median milliseconds per forward pass of ``example`` through ``model`` (eval mode, no grad), both
    moved to ``device`` first when it is given (default: where they are)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"latency repeats={repeats} / warmup={warmup} are invalid; allowed: repeats >= 1, warmup >= 0")
    if device is not None:
        model, example = model.to(device), example.to(device)
    sync = torch.cuda.synchronize if example.device.type == "cuda" else (lambda: None)  # CUDA runs kernels asynchronously
    was_training = model.training
    model.eval()
    try:
        for _ in range(warmup):
            model(example)
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            model(example)
            sync()
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        model.train(was_training)
    return float(statistics.median(times))
