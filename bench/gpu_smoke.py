"""GPU smoke test: tiny runs of every task through the CLI on the CPU and on a CUDA device, with and
without ``trainer.amp=true``, with their wall times side by side.

    .venv/bin/python bench/gpu_smoke.py                    # on a machine with CUDA: CPU, cuda, cuda + amp
    .venv/bin/python bench/gpu_smoke.py --device cuda:1 --skip-cpu
    .venv/bin/python bench/gpu_smoke.py --device cpu       # without a GPU: the CPU runs and the amp refusal only

Cases: classification (``darts``, ``evolution``, then ``mode=finetune`` of the darts run),
segmentation and detection (``darts`` on generated shapes and rectangles, baselines included) and
rl (``random`` on CartPole-v1, then ``mode=play`` of it). Each run must exit 0, write
``metrics.json`` (``play.json`` for play) and, for searches, record the device it ran on. rl
refuses ``trainer.amp=true`` (stable-baselines3 trains in float32); that refusal, and the refusal
of ``trainer.amp=true`` on the CPU, must be one ``zoo: error:`` line. The script exits 1 when
anything fails, after printing the table and each failure's last stderr lines. The budgets are
tiny: the times measure start-up and the per-step overheads of each device, not training speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "tasks" / "segmentation"), str(REPO / "tests" / "tasks" / "detection")]

CLS_TINY = [
    "task.supernet.layers=2",
    "task.supernet.init_channels=4",
    "task.estimate_model.layers=2",
    "task.estimate_model.init_channels=4",
    "task.model.layers=2",
    "task.model.init_channels=6",
    "trainer.estimate_epochs=1",
    "trainer.epochs=2",
]
SEG_TINY = [
    "data=masks",
    "data.tile_size=32",
    "space.steps=2",
    "space.layers=4",
    *(f"task.{p}.{k}={v}" for p in ("model", "supernet") for k, v in (("init_channels", 4), ("aspp_channels", 8), ("decoder_channels", 8))),
    "trainer.batch_size=8",
    "trainer.epochs=2",
    "task.baseline.enabled=true",
]
DET_TINY = [
    "data=coco",
    "data.tile_size=64",
    "task.model.init_channels=4",
    "task.model.neck_channels=8",
    "task.supernet.init_channels=8",  # 4 crashes the CPU backward (heap corruption) at this commit: a separate bug
    "task.supernet.neck_channels=8",
    "trainer.batch_size=4",
    "trainer.epochs=2",
    "task.baseline.enabled=true",
]
RL_TINY = [
    "task=rl",
    "data.env=CartPole-v1",
    *(f"task.{p}.{k}={v}" for p in ("model", "estimate_model") for k, v in (("width", 8), ("layers", 1))),
    "task.baseline.enabled=false",
    "task.gif=false",
    "trainer.steps=512",
    "trainer.epochs=2",
    "trainer.estimate_steps=256",
    "trainer.estimate_seeds=1",
    "trainer.eval_every=0",
    "trainer.curve_episodes=2",
    "trainer.eval_episodes=3",
    "trainer.n_epochs=2",
]


@dataclass
class Case:
    name: str
    args: list[str]  # {run:NAME} stands for the run directory of case NAME on the same device (its checkpoint)
    amp: str = "train"  # trainer.amp=true: "train" (applies on CUDA), "refused" (its refusal is checked), "n/a" (nothing trains)
    writes: str = "metrics.json"
    after: str | None = None  # the case whose run this one reads


REFUSALS_ON_CPU = ("classification darts", "rl random")  # trainer.amp=true on the CPU: the refusal is checked once per kind


@dataclass
class Result:
    seconds: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def cases(data: Path) -> list[Case]:
    return [
        Case("classification darts", ["search=darts", "search.epochs=1", "search.warmup_epochs=0", *CLS_TINY]),
        Case(
            "classification evolution",
            ["search=evolution", "search.budget=2", "search.population_size=2", "search.sample_size=2", *CLS_TINY],
        ),
        Case(
            "classification finetune",
            [
                "mode=finetune",
                "checkpoint={run:classification darts}",
                "finetune.epochs=1",
                "finetune.freeze_epochs=0",
                "finetune.min_steps=0",
            ],
            after="classification darts",
        ),
        Case(
            "segmentation darts",
            ["task=segmentation", f"data.root={data / 'shapes'}", "search=darts", "search.epochs=1", "search.warmup_epochs=0", *SEG_TINY],
        ),
        Case(
            "detection darts",
            ["task=detection", f"data.root={data / 'rectangles'}", "search=darts", "search.epochs=1", "search.warmup_epochs=0", *DET_TINY],
        ),
        Case("rl random", [*RL_TINY, "search=random", "search.budget=1"], amp="refused"),
        Case(
            "rl play",
            ["mode=play", "checkpoint={run:rl random}", "play.episodes=2", "play.gif=false"],
            amp="n/a",
            writes="play.json",
            after="rl random",
        ),
    ]


def write_data(root: Path) -> None:
    from shapes import make_shapes
    from test_detection_e2e import make_rectangles

    make_shapes(root / "shapes", n=12, size=48, seed=0)
    make_rectangles(root / "rectangles", n=10, size=64, seed=0)


def run_case(case: Case, device: str, amp: bool, out: Path, runs: dict[str, Path]) -> Result:
    run_dir = out / f"{case.name.replace(' ', '-')}-{device.replace(':', '')}{'-amp' if amp else ''}"
    args = [a.replace(f"{{run:{case.after}}}", str(runs.get(case.after, Path("missing")))) if case.after else a for a in case.args]
    cmd = [sys.executable, "-m", "zoo", *args, f"device={device}", "progress=false", f"hydra.run.dir={run_dir}"]
    if amp:
        cmd.append("trainer.amp=true")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    refused = amp and (case.amp == "refused" or device == "cpu")
    if refused:  # must fail before work, in one line
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("zoo: error: trainer.amp=true is invalid")
        return Result(
            None, None if ok else f"expected a one-line trainer.amp refusal, got exit {proc.returncode}: {proc.stderr[-1500:]}", ["refused"]
        )
    if proc.returncode != 0:
        return Result(seconds, f"exit {proc.returncode}: {proc.stderr[-3000:]}")
    written = run_dir / case.writes
    if not written.is_file():
        return Result(seconds, f"{written} was not written")
    runs.setdefault(case.name, run_dir)
    metrics = json.loads(written.read_text())
    ran_on = metrics.get("device")
    if case.writes == "metrics.json" and "mode=finetune" not in args and (ran_on or "").split(":")[0] != device.split(":")[0]:
        return Result(seconds, f"metrics.json says device={ran_on!r}, expected {device}")
    score = next(
        (metrics[k] for k in ("test_accuracy", "test_mIoU", "test_mAP50", "test_mean_return", "mean_return") if k in metrics), None
    )
    return Result(seconds, None, [f"{score:.3f}" if isinstance(score, float) else ""])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--skip-cpu", action="store_true", help="do not run the CPU column when --device is a GPU")
    p.add_argument("--cases", default="", help="comma-separated case names (substrings), default all")
    p.add_argument("--out", default=None, help="keep the run directories here (default: a temporary directory)")
    a = p.parse_args()
    gpu = a.device != "cpu"
    columns = ([] if a.skip_cpu and gpu else [("cpu", False)]) + ([(a.device, False), (a.device, True)] if gpu else [("cpu", True)])
    out_ctx = tempfile.TemporaryDirectory(prefix="zoo-gpu-smoke-") if a.out is None else None
    out = Path(a.out or out_ctx.name)  # type: ignore[union-attr]
    out.mkdir(parents=True, exist_ok=True)
    write_data(out / "data")
    chosen = [c for c in cases(out / "data") if not a.cases or any(s.strip() in c.name for s in a.cases.split(","))]
    runs: dict[str, dict[str, Path]] = {}
    table: dict[str, dict[str, Result]] = {}
    failures = []
    for case in chosen:
        for device, amp in columns:
            key = f"{device}{' + amp' if amp else ''}"
            if amp and (case.amp == "n/a" or (device == "cpu" and case.name not in REFUSALS_ON_CPU)):
                continue
            res = run_case(case, device, amp, out, runs.setdefault(device, {}))
            table.setdefault(case.name, {})[key] = res
            status = "FAIL" if res.error else ("refused" if "refused" in res.notes else f"{res.seconds:.1f}s")
            print(f"{case.name:<26} {key:<14} {status}", flush=True)
            if res.error:
                failures.append(f"--- {case.name} on {key}:\n{res.error}")
    keys = [f"{d}{' + amp' if m else ''}" for d, m in columns]
    print("\n| case | " + " | ".join(f"{k} (s)" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in table.items():
        cells = []
        for k in keys:
            r = row.get(k)
            if r is None:
                cells.append("-")
            elif r.error:
                cells.append("FAIL")
            elif "refused" in r.notes:
                cells.append("refused (as it must)")
            else:
                cells.append(f"{r.seconds:.1f}" + (f" (score {r.notes[0]})" if r.notes and r.notes[0] else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")
    if failures:
        print("\n" + "\n".join(failures), file=sys.stderr)
    if out_ctx is not None:
        out_ctx.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
