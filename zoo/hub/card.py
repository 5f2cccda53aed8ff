"""The model card (``README.md``) of a bundle, written from its ``config.json`` alone.

It says what was searched (strategy, space, hyper-parameters), on what data, the
resulting architecture and metrics, how to load, fine-tune and export the model, and
the one command that reproduces it.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.config_values import finite_number
from zoo.hub.facts import hub_facts


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _genotype_text(arch: Any) -> str:
    try:
        from zoo.models import resolve_genotype

        g = resolve_genotype(arch)
        return g.to_text() if hasattr(g, "to_text") else json.dumps(g.to_json())
    except Exception:  # a card is still written for a genotype this version cannot parse
        return json.dumps(arch)


def _baseline_lines(metrics: dict[str, Any]) -> list[str]:
    """The hand-made model trained beside this one in its run: what it is, its size, and the test metrics the run
    compared (``searched_minus_baseline``'s, else every one both have): ``metrics["baseline"][k]`` against this
    model's ``test_<k>``. "Same-size" only where the run found the two sizes within its tolerance."""
    base = metrics.get("baseline")
    if not isinstance(base, dict):
        return []
    compared = metrics.get("searched_minus_baseline")  # the metrics the run compared; older runs recorded none
    keys = list(compared) if isinstance(compared, dict) and compared else list(base)
    pairs = [(k, metrics[f"test_{k}"], base[k]) for k in keys if finite_number(base.get(k)) and finite_number(metrics.get(f"test_{k}"))]
    if not pairs:
        return []
    size, same_size = "", base.get("params_within_tolerance") is True
    if finite_number(base.get("params")) and finite_number(metrics.get("params")) and metrics["params"]:
        ratio = base["params"] / metrics["params"]
        size = f", {int(base['params']):,} parameters ({ratio:.2f}x this model's {int(metrics['params']):,})"
    return [
        "## Against the same-size hand-made model" if same_size else "## Against the hand-made model of its run",
        "",
        f"Trained beside it in the same run, on the same data, budget and seed (one seed): {base.get('model') or 'the hand-made model'}{size}.",
        "",
        "| test metric | this model | hand-made | difference |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {k} | {_fmt(float(ours))} | {_fmt(float(theirs))} | {round(ours, 4) - round(theirs, 4):+.4f} |" for k, ours, theirs in pairs),
        "",
    ]


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] = ("", "")) -> list[str]:
    out = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    out += [f"| {k} | {_fmt(v).replace('|', '&#124;')} |" for k, v in rows]  # a '|' in a value would end its cell
    return out


def render_card(config: dict[str, Any], name: str | None = None) -> str:
    """Markdown model card for a bundle's ``config.json`` (``name``: its zoo entry name, if any)."""
    task = config.get("task") or "unknown"
    data = config.get("data") or {}
    search = config.get("search") or {}
    run_cfg = config.get("run_config") or {}
    model = config.get("model") or {}
    metrics = config.get("metrics") or {}
    dataset = data.get("name") or (run_cfg.get("data") or {}).get("name") or "unknown data"
    strategy = search.get("strategy") or (run_cfg.get("search") or {}).get("name") or "unknown"
    space = search.get("space") or (run_cfg.get("space") or {}).get("name") or "unknown"
    title = name or config.get("name") or f"{task} on {dataset} ({strategy})"
    ref = name or "PATH/TO/THIS/DIRECTORY"
    lines = [
        "---",
        f"license: {str(config.get('license') or 'unknown').lower()}",
        "library_name: zoo",
        f"tags: [zoo, neural-architecture-search, {task}, {strategy}]",
        f"datasets: [{dataset}]",
        "---",
        "",
        f"# {title}",
        "",
    ]
    parent = config.get("finetuned_from")
    if parent:
        lines += [
            f"A {task} model fine-tuned from the zoo checkpoint `{parent.get('checkpoint')}` "
            f"(searched with {parent.get('strategy', strategy)}) on **{dataset}**.",
            "",
        ]
    else:
        lines += [
            f"A {task} model whose architecture was found by **{strategy}** neural architecture search "
            f"in the `{space}` cell space on **{dataset}**, then retrained from scratch; written by `zoo`.",
            "",
        ]
    summary: list[tuple[str, Any]] = [("task", task), ("data", dataset), ("search strategy", strategy), ("search space", space)]
    if "params" in metrics:
        summary.append(("parameters", metrics["params"]))
    summary.append(("licence", config.get("license") or "unknown"))
    lines += _table(summary, ("", "")) + [""]

    lines += ["## Metrics", "", hub_facts(task).metrics_note(), ""]
    rows = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and k not in ("params", "score")]
    lines += (_table(rows, ("metric", "value")) if rows else ["(none recorded)"]) + [""]
    lines += _baseline_lines(metrics)
    lines += hub_facts(task).card_results(config)
    if parent and parent.get("metrics"):
        lines += [
            "Parent checkpoint metrics (on its own data): "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in parent["metrics"].items() if isinstance(v, (int, float))),
            "",
        ]

    lines += ["## Data", ""]
    # nested values (e.g. a translator's whole tokenizer) stay in config.json; the table shows plain ones
    drows = [
        (k, f"{len(v):,} items (config.json data.{k})" if isinstance(v, list) and len(v) > 10 else v)
        for k, v in data.items()
        if k != "classes" and not isinstance(v, dict)
    ]
    labels = config.get("labels") or data.get("classes")
    if drows:
        lines += _table(drows, ("", "")) + [""]
    if labels:
        lines += [f"Labels ({len(labels)}, output index order): " + ", ".join(f"`{l}`" for l in labels), ""]

    lines += ["## What was searched", ""]
    sc = {k: v for k, v in (run_cfg.get("search") or {}).items() if k != "name"}
    if sc:
        lines += [f"Strategy `{strategy}` with " + ", ".join(f"`{k}={v}`" for k, v in sc.items()) + "."]
    sp = run_cfg.get("space") or {}
    ops = search.get("ops") or sp.get("primitives")  # the ops the space searched (a space may pick them by its input)
    if ops:
        lines += [f"Space `{space}`: {sp.get('steps', 4)} nodes per cell, candidate ops " + ", ".join(f"`{p}`" for p in ops) + "."]
    tr = run_cfg.get("trainer") or {}
    if tr:
        lines += ["Training: " + ", ".join(f"`{k}={v}`" for k, v in tr.items()) + "."]
    lines += ["", "Architecture (cell genotype):", "", "```", _genotype_text(model.get("arch")), "```", ""]
    margs = {k: v for k, v in model.items() if k not in ("arch", "mean", "std")}
    if margs:
        lines += ["Network: " + ", ".join(f"`{k}={v}`" for k, v in margs.items()) + ".", ""]

    pre = config.get("preprocessing") or hub_facts(task).preprocessing(config)
    if pre:
        lines += ["## Preprocessing", ""] + [f"- {k}: {v}" for k, v in pre.items() if v is not None] + [""]

    lines += [
        "## How to use",
        "",
        "```python",
        "import zoo",
        f'model = zoo.from_pretrained("{ref}")   # a zoo name, a bundle directory or archive',
        "model.eval()",
        "```",
        "",
        "Weights are `model.safetensors`; `config.json` rebuilds the network with `zoo.create_model(**config['model'])`. "
        "Nothing is unpickled.",
        "",
    ]
    lines += hub_facts(task).card_usage(ref)
    if hub_facts(task).timm and name:
        lines += [
            "With timm: `import zoo, timm; zoo.register_timm(); timm.create_model("
            f'"{"zoo_" + name.replace("-", "_").replace(".", "_")}", pretrained=True)`.',
            "",
        ]
    command = config.get("command")
    if command:
        version = ""
        if config.get("zoo_version") or config.get("git_commit"):
            version = f" at zoo {config.get('zoo_version', '?')}" + (
                f", commit `{config['git_commit'][:12]}`"
                + (" with uncommitted changes" if str(config["git_commit"]).endswith("+dirty") else "")
                if config.get("git_commit")
                else ""
            )
        lines += [
            "## Reproduce",
            "",
            f"From a checkout of the zoo repository{version}; the defaults of zoo/conf/ and tasks/<task>/conf/ plus the overrides shown:",
            "",
            "```bash",
            command,
            "```",
            "",
        ]
        lines += [
            "The search and retraining are seeded; results still vary slightly with the number of CPU threads and the torch version.",
            "",
        ]
    family = config.get("family")
    if family:
        lines += [
            "## Family",
            "",
            f"One search, then the best network at each size, each beside the hand-made model of the same size: {', '.join(family['members'])}.",
            "",
            "![searched vs hand-made](frontier.png)",
            "",
            "| entry | params | test score | hand-made params | hand-made score |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in family.get("frontier", []):
            b = r.get("baseline") or {}
            score = f"{r['score']:.4f}" if isinstance(r.get("score"), (int, float)) else "-"
            b_score = f"{b['score']:.4f}" if isinstance(b.get("score"), (int, float)) else "-"
            b_params = f"{b['params']:,}" if isinstance(b.get("params"), int) else "-"
            lines.append(f"| {r.get('entry', r['label'])} | {r['params']:,} | {score} | {b_params} | {b_score} |")
        lines.append("")
    lines += ["## Licence", "", f"{config.get('license') or 'unknown'} (weights and card).", ""]
    return "\n".join(lines)
