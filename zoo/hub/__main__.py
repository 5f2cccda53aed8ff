"""``python -m zoo.hub``: list, inspect, download, publish and export zoo checkpoints (and
download the benchmark tables the zoo ships, e.g. ``nb201``).

    python -m zoo.hub list [--task T]
    python -m zoo.hub info NAME [--json]
    python -m zoo.hub download NAME [--dir D]
    python -m zoo.hub push RUN_DIR --to DIR_OR_URL [--name N] [--archive tar|zip]
    python -m zoo.hub export NAME_OR_PATH --format onnx|torchscript [--out FILE_OR_DIR] [--input-size H W]

``--registry`` (repeatable) and ``ZOO_REGISTRY`` add registries to the built-in one;
``ZOO_HOME`` moves the cache (default ``~/.cache/zoo``). Errors are one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zoo.hub.download import HubError


def _size(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _main_metric(metrics: dict[str, Any], task: str | None = None) -> str:
    """The task's headline metric (its hub facts), else the first number recorded."""
    from zoo.hub.facts import hub_facts

    headline = hub_facts(task).headline(metrics)
    if headline:
        return headline
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            return f"{k} {v:g}"
    return "-"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace) -> None:
    from zoo.hub.registry import load_entries

    entries = [e for e in load_entries(args.registry, kind=None).values() if not args.task or e.task == args.task]
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return
    if not entries:
        print(f"no zoo entries{' for task ' + args.task if args.task else ''}")
        return
    rows = []
    models = [e for e in entries if e.kind == "model"]
    # a family's members together, smallest first (by parameters), under the family's name
    for e in sorted(models, key=lambda e: (e.task, not e.has_weights, e.data.get("family") or e.name, e.data.get("params") or 0, e.name)):
        weights = _size(sum(f.size or 0 for f in e.files)) if e.has_weights else "arch only"
        params = e.data.get("params")
        rows.append(
            [
                e.name,
                e.task,
                e.dataset.split(" ")[0],
                _main_metric(e.metrics, e.task),
                f"{params / 1e6:.2f}M" if params else "-",
                weights,
                str(e.data.get("family") or "-"),
            ]
        )
    header = ["NAME", "TASK", "DATASET", "METRIC", "PARAMS", "WEIGHTS", "FAMILY"]
    if not any(e.data.get("family") for e in models):  # the column only where a family is listed
        header, rows = header[:-1], [r[:-1] for r in rows]
    out = [table(rows, header)] if rows else []
    # benchmarks (tables for tabular search) are data, not models: no metric, params or weights
    bench = [
        [e.name, e.task, e.dataset, _size(sum(f.size or 0 for f in e.files)), str(e.data.get("usage") or "-")]
        for e in sorted(entries, key=lambda e: e.name)
        if e.kind == "benchmark"
    ]
    if bench:
        out.append(table(bench, ["BENCHMARK", "TASK", "DATASET", "FILES", "USE"]))
    print("\n\n".join(out))


def cmd_info(args: argparse.Namespace) -> None:
    from zoo.hub.api import entry_dir
    from zoo.hub.registry import get_entry

    e = get_entry(args.name, args.registry, kind=None)
    if args.json:
        print(json.dumps(e.to_json(), indent=2))
        return
    d = e.data
    benchmark = e.kind == "benchmark"
    lines = [
        f"{e.name}: {d.get('description', '')}",
        f"  kind        {e.kind}" + (" (tables for tabular search, not a model: no weights, no params)" if benchmark else ""),
        f"  task        {e.task}",
        f"  dataset     {e.dataset}",
    ]
    if benchmark:
        lines += [f"  space       {d.get('space', '-')}", f"  use         {d.get('usage', '-')}"]
    else:
        lines += [
            f"  strategy    {d.get('strategy', '-')} (space {d.get('space', '-')})",
            f"  params      {d.get('params', '-'):,}" if isinstance(d.get("params"), int) else "  params      -",
        ]
    lines.append(f"  licence     {d.get('license', '-')}")
    for k, v in e.metrics.items():
        lines.append(f"  {k:<14} {v:.4f}" if isinstance(v, float) else f"  {k:<14} {v}")
    if d.get("labels"):
        lines.append(f"  labels      {', '.join(map(str, d['labels']))}")
    if d.get("paper"):
        lines.append(f"  paper       {d['paper']}")
    if d.get("reproduce"):
        lines.append(f"  reproduce   {d['reproduce']}")
    if e.files:
        lines.append("  files")
        width = max(18, *(len(f.name) for f in e.files))
        for f in e.files:
            lines.append(f"    {f.name:<{width}} {_size(f.size):>9}  sha256 {f.sha256[:16]}...  {f.urls[0] if f.urls else ''}")
        cached = entry_dir(e)
        done = all((cached / f.name).is_file() for f in e.files) if benchmark else (cached / "config.json").is_file()
        lines.append(f"  cache       {cached}{'' if done else ' (not downloaded)'}")
    else:
        lines.append("  files       none (architecture only: zoo.create_model(" + repr(e.name) + "))")
    lines.append(f"  registry    {e.source}")
    print("\n".join(lines))


def cmd_download(args: argparse.Namespace) -> None:
    from zoo.hub.api import download

    d = download(args.name, args.dir, args.registry, progress=not args.quiet)
    print(d)


def cmd_push(args: argparse.Namespace) -> None:
    from zoo.hub.publish import push

    if (Path(args.run_dir) / "frontier.json").is_file():  # a family run: one entry per member
        from zoo.hub.publish import push_family

        for entry, where in push_family(args.run_dir, args.to, name=args.name, archive=args.archive, registry_file=args.registry_file):
            print(f"pushed {entry['name']} ({len(entry['files'])} files, family {entry['family']}) -> {where}")
        return
    entry, where = push(args.run_dir, args.to, name=args.name, archive=args.archive, registry_file=args.registry_file)
    print(f"pushed {entry['name']} ({len(entry['files'])} files) -> {where}")


def cmd_export(args: argparse.Namespace) -> None:
    from zoo.hub.api import resolve_bundle
    from zoo.hub.bundle import load_bundle
    from zoo.hub.export import check_export_options, export_model

    check_export_options(args.format, args.input_size)  # before anything is fetched
    directory, name = resolve_bundle(args.name, args.registry, progress=not args.quiet)
    model, cfg = load_bundle(directory)
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}.get(args.format, "")
    default = Path(f"{name or Path(args.name).stem}{suffix}")
    out = Path(args.out) if args.out else default
    if out.is_dir():  # an existing directory: NAME.onnx (NAME.pt) is written in it, as cp puts a file in one
        out = out / default
    report = export_model(model, cfg, out, args.format, opset=args.opset, check=not args.no_check, input_size=args.input_size)
    diff = f", max |exported - torch| = {report['max_abs_diff']:.2e}" if "max_abs_diff" in report else ""
    outputs = ", ".join(f"{n} {s}" for n, s in report["outputs"].items())
    print(f"exported {args.format} -> {out} (input {report['input_shape']}, outputs {outputs}{diff}; check {report.get('checked', 'off')})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zoo.hub", description="The zoo of searched checkpoints.")
    p.add_argument(
        "--registry", action="append", default=None, help="extra registry file, directory or URL (repeatable; also ZOO_REGISTRY)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("list", help="a table of the zoo's entries")
    s.add_argument("--task", help="only this task (the TASK column of the list)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("info", help="one entry in detail")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("download", help="fetch an entry (a checkpoint or a benchmark's tables) into the cache (or --dir)")
    s.add_argument("name")
    s.add_argument("--dir", help="put the entry's files here instead of the cache")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_download)
    s = sub.add_parser("push", help="publish a run directory as a zoo entry")
    s.add_argument("run_dir")
    s.add_argument("--to", required=True, help="a directory, file:// or http(s):// URL (HTTP PUT)")
    s.add_argument("--name", help="entry name (default DATA-STRATEGY)")
    s.add_argument("--archive", choices=["tar", "tar.gz", "zip"], help="publish one archive instead of three files")
    s.add_argument("--registry-file", help="registry.json to update (default TO/registry.json; directories only)")
    s.set_defaults(fn=cmd_push)
    s = sub.add_parser("export", help="ONNX or TorchScript file of an entry or bundle")
    s.add_argument("name", help="zoo name, bundle directory or archive")
    s.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    s.add_argument(
        "--out", help="output file, or an existing directory to write NAME.onnx / NAME.pt in (default: NAME.onnx / NAME.pt here)"
    )
    s.add_argument("--opset", type=int, default=17)
    s.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="spatial size of the exported graph (default: the bundle's; graphs of fixed-size tasks take only this size)",
    )
    s.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_export)
    for sp in sub.choices.values():  # --registry is accepted after the command too
        sp.add_argument("--registry", action="append", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except (HubError, ValueError, KeyError, NotImplementedError) as e:  # NotImplementedError: a task that does not export
        print(f"zoo.hub: error: {str(e.args[0]) if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:  # a path that cannot be written (a file where a folder is needed, no permission, a full disk)
        where = f": {e.filename}" if e.filename else ""
        print(f"zoo.hub: error: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
