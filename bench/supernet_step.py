"""Times one DARTS supernet training step and measures its peak memory, side by side.

Two variants on the same network (stem, cell configuration, classifier), the same init
seed and the same batches:

* ``textbook``: the plain form of the DARTS mixed op (Liu et al., "DARTS", ICLR 2019),
  :class:`zoo.space.supernet.SearchCell` / ``MixedOp``: every candidate op (``none``
  included) on every edge, pools followed by ``BatchNorm(affine=False)``, edge output
  ``sum(w * op(x))`` with ``w = softmax(alpha)``.
* ``zoo``: :class:`zoo.space.supernet.SuperNet` as the project builds it.
* ``textbook_cl`` (context, not a target): the textbook transcription run on channels-last
  activations, to show how much of the gain is the memory layout alone.

One step is what ``zoo.search.darts`` does per batch at first order: forward + backward
for alpha on a valid batch and an Adam step on alpha, then forward + backward + gradient
clipping + SGD (momentum) step for the weights on a train batch.

Time: repetitions of both variants are interleaved (the order alternating) so that load
from other processes hits both alike; the script reports medians of wall time, the median
of the per-repetition wall-time ratios, and medians of process CPU time (with one thread,
CPU time is the least disturbed by other processes on a shared machine).

Memory: every tensor allocation and free of one step (after warm-up, gradients cleared)
is recorded by the torch profiler (``profile_memory=True``); the running sum of live bytes
gives the step's peak exactly (activations, gradients, optimizer temporaries), independent of
the allocator and of other processes. ``persistent`` is parameters + buffers + optimizer
state, alive before and after the step. With ``--rss``, each variant also runs alone in a
fresh subprocess and reports the growth of its peak resident set size (``VmHWM``)
over one step (Linux: the high-water mark is reset before the step), as a cross-check that
includes allocator overheads and cached memory.

    python bench/supernet_step.py                     # both configurations
    python bench/supernet_step.py --configs digits --reps 20 --rss
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from zoo.space.ops import DARTS_OPS
from zoo.space.supernet import SearchCell, SuperNet

VARIANTS = ("textbook", "textbook_cl", "zoo")
CONFIGS: dict[str, dict[str, Any]] = {
    # tasks/classification/conf/task/classification.yaml (supernet) + tasks/classification/conf/trainer/classification.yaml + digits data
    "digits": dict(in_chans=1, size=8, init_channels=8, layers=5, batch=64, num_classes=10),
    # the DARTS CIFAR-10 search network at a smaller batch
    "cifar": dict(in_chans=3, size=32, init_channels=16, layers=8, batch=32, num_classes=10),
}


# ------------------------------------------------------------------ the step
class Bench:
    def __init__(self, variant: str, cfg: dict[str, Any], batch: int | None = None, seed: int = 0) -> None:
        torch.manual_seed(seed)
        kw = dict(
            num_classes=cfg["num_classes"],
            init_channels=cfg["init_channels"],
            layers=cfg["layers"],
            in_chans=cfg["in_chans"],
            primitives=DARTS_OPS,
        )
        if variant == "zoo":
            self.net = SuperNet(**kw)  # type: ignore[arg-type]
        else:
            self.net = SuperNet(cell_cls=SearchCell, channels_last=variant == "textbook_cl", **kw)  # type: ignore[arg-type]
        self.net.train()
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        g = torch.Generator().manual_seed(seed + 1)
        n = batch or cfg["batch"]
        shape = (n, cfg["in_chans"], cfg["size"], cfg["size"])
        self.train_batch = (torch.randn(shape, generator=g), torch.randint(0, cfg["num_classes"], (n,), generator=g))
        self.valid_batch = (torch.randn(shape, generator=g), torch.randint(0, cfg["num_classes"], (n,), generator=g))

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def step(self) -> None:
        net = self.net
        self.a_opt.zero_grad(set_to_none=True)
        self.loss(self.valid_batch).backward(inputs=net.arch_parameters())
        self.a_opt.step()
        self.w_opt.zero_grad(set_to_none=True)
        self.loss(self.train_batch).backward()
        for a in net.arch_parameters():
            a.grad = None
        nn.utils.clip_grad_norm_(list(net.weight_parameters()), 5.0)
        self.w_opt.step()

    def clear_grads(self) -> None:
        self.a_opt.zero_grad(set_to_none=True)
        self.w_opt.zero_grad(set_to_none=True)

    def persistent_bytes(self) -> int:
        tensors = list(self.net.parameters()) + list(self.net.buffers())
        for opt in (self.w_opt, self.a_opt):
            tensors += [t for st in opt.state.values() for t in st.values() if isinstance(t, torch.Tensor)]
        return sum(t.numel() * t.element_size() for t in tensors)


def profiled_peak_bytes(fn: Callable[[], None]) -> int:
    """Peak of live tensor bytes allocated while ``fn`` runs, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.unlink(path)
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0]
    return max([0] + totals)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_child(variant: str, config: str, threads: int) -> dict[str, int]:
    """Runs in a fresh process: growth of the peak RSS over one full-size step, after a batch-2 warm-up step.

    The kernel's high-water mark (VmHWM) is reset to the current RSS right before the step
    (``/proc/self/clear_refs``), so what the process touched earlier (imports, set-up) does not
    hide the step's own peak.
    """
    torch.set_num_threads(threads)
    warm = Bench(variant, CONFIGS[config], batch=2)
    warm.step()
    del warm
    b = Bench(variant, CONFIGS[config])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _proc_status_kib("VmRSS")
    b.step()
    return {"base_kib": base, "peak_kib": _proc_status_kib("VmHWM")}


def run_config(name: str, reps: int, threads: int, rss: bool) -> dict[str, Any]:
    cfg = CONFIGS[name]
    benches = {v: Bench(v, cfg) for v in VARIANTS}
    n_params = {v: sum(p.numel() for p in b.net.weight_parameters()) for v, b in benches.items()}
    assert len(set(n_params.values())) == 1, n_params
    for b in benches.values():  # warm-up: optimizer state, lazy kernel set-up
        b.step()
        b.step()
    times: dict[str, list[float]] = {v: [] for v in benches}
    cpu: dict[str, list[float]] = {v: [] for v in benches}
    for r in range(reps):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for v in order:
            t0, c0 = time.perf_counter(), time.process_time()
            benches[v].step()
            times[v].append(time.perf_counter() - t0)
            cpu[v].append(time.process_time() - c0)
    mem: dict[str, dict[str, int]] = {}
    for v, b in benches.items():
        b.clear_grads()
        mem[v] = {"step_peak": profiled_peak_bytes(b.step), "persistent": b.persistent_bytes()}
    out: dict[str, Any] = {"config": name, **cfg, "threads": threads, "reps": reps, "weight_params": n_params["zoo"]}
    for v in benches:
        out[v] = {
            "median_s": statistics.median(times[v]),
            "min_s": min(times[v]),
            "median_cpu_s": statistics.median(cpu[v]),
            "step_peak_MiB": mem[v]["step_peak"] / 2**20,
            "total_peak_MiB": (mem[v]["step_peak"] + mem[v]["persistent"]) / 2**20,
        }
    out["speedup_median"] = out["textbook"]["median_s"] / out["zoo"]["median_s"]
    out["speedup_paired"] = statistics.median(t / z for t, z in zip(times["textbook"], times["zoo"]))
    out["speedup_cpu"] = out["textbook"]["median_cpu_s"] / out["zoo"]["median_cpu_s"]
    out["speedup_cpu_textbook_cl"] = out["textbook"]["median_cpu_s"] / out["textbook_cl"]["median_cpu_s"]
    out["memory_ratio_step"] = mem["zoo"]["step_peak"] / mem["textbook"]["step_peak"]
    out["memory_ratio_total"] = out["zoo"]["total_peak_MiB"] / out["textbook"]["total_peak_MiB"]
    if rss:
        for v in benches:
            res = subprocess.run(
                [sys.executable, __file__, "--child", v, name, "--threads", str(threads)], capture_output=True, text=True, check=True
            )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            out[v]["rss_growth_MiB"] = (r["peak_kib"] - r["base_kib"]) / 1024
        out["memory_ratio_rss"] = out["zoo"]["rss_growth_MiB"] / max(out["textbook"]["rss_growth_MiB"], 1e-9)
    return out


def report(res: dict[str, Any]) -> str:
    t = res["textbook"]
    lines = [
        f"== {res['config']}: C={res['init_channels']} layers={res['layers']} batch={res['batch']} "
        f"input {res['in_chans']}x{res['size']}x{res['size']}, {res['weight_params']} weights, "
        f"{res['threads']} thread(s), {res['reps']} interleaved reps",
        f"{'':12}{'median step':>14}{'min step':>11}{'median CPU':>13}{'step peak':>12}{'total peak':>12}"
        + (f"{'RSS growth':>12}" if "rss_growth_MiB" in t else ""),
    ]
    for v in VARIANTS:
        r = res[v]
        row = (
            f"{v:12}{r['median_s'] * 1e3:>11.1f} ms{r['min_s'] * 1e3:>8.1f} ms{r['median_cpu_s'] * 1e3:>10.1f} ms"
            f"{r['step_peak_MiB']:>8.1f} MiB{r['total_peak_MiB']:>8.1f} MiB"
        )
        if "rss_growth_MiB" in r:
            row += f"{r['rss_growth_MiB']:>8.1f} MiB"
        lines.append(row)
    lines.append(
        f"throughput zoo/textbook: {res['speedup_median']:.2f}x (wall medians), {res['speedup_paired']:.2f}x (median of paired wall ratios),"
        f" {res['speedup_cpu']:.2f}x (CPU-time medians);"
        f" peak memory zoo/textbook: {res['memory_ratio_step']:.2f}x (step), {res['memory_ratio_total']:.2f}x (total)"
        + (f", {res['memory_ratio_rss']:.2f}x (RSS)" if "memory_ratio_rss" in res else "")
    )
    lines.append(f"(context: textbook on channels-last activations runs at {res['speedup_cpu_textbook_cl']:.2f}x the textbook, CPU time)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--reps", type=int, default=10, help="timed steps per variant (interleaved)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps timings steadier on a shared machine)")
    ap.add_argument("--rss", action="store_true", help="also measure peak-RSS growth in fresh subprocesses")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(rss_child(args.child[0], args.child[1], args.threads)))
        return
    torch.set_num_threads(args.threads)
    results = []
    for name in args.configs:
        res = run_config(name, args.reps, args.threads, args.rss)
        print(report(res), flush=True)
        results.append(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
