"""Latency of a built model, measured on this machine (the ``latency`` objective outside benchmark mode).

The median of ``repeats`` timed forward passes of one example in eval mode, after ``warmup``
untimed ones, with torch's current thread setting (the CLI's ``threads=``). The median is
robust to the odd slow pass on a shared machine; it is a relative figure for comparing
candidates measured in the same run, not a deployment number.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def measure_latency_ms(model: nn.Module, example: torch.Tensor, warmup: int = 2, repeats: int = 10) -> float:
    """Median milliseconds per forward pass of ``example`` through ``model`` (eval mode, no grad)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"latency repeats={repeats} / warmup={warmup} are invalid; allowed: repeats >= 1, warmup >= 0")
    was_training = model.training
    model.eval()
    try:
        for _ in range(warmup):
            model(example)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(example)
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        model.train(was_training)
    return float(statistics.median(times))
