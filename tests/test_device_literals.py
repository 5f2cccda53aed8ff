"""No code in ``zoo/`` or ``tasks/`` puts tensors on a device it names: checked over the AST.

The run's device is resolved once (:func:`zoo.device.resolve_device`, the ``device`` option) and
reaches everything through the task (``Task.device``) or the module at hand
(:func:`zoo.device.model_device`). A ``"cpu"`` or ``"cuda"`` string passed as a device (``device=``,
``map_location=``, ``device_type=``, ``torch.device(...)``, ``.to(...)``, a parameter's default) or
a ``.cuda()`` call would pin work to one device whatever the config says; the few legitimate
places are listed in :data:`ALLOWED`, each with the reason. Comparisons such as
``device.type == "cuda"`` ask where something is and are not flagged.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE_NAME = re.compile(r"(cpu|cuda)(:\d+)?")
DEVICE_KEYWORDS = {"device", "map_location", "device_type"}

# (file, enclosing function) -> why a device literal is right there
ALLOWED: dict[tuple[str, str], str] = {
    ("zoo/device.py", "resolve_device"): "the resolver itself: device=auto becomes CUDA when this machine has it, else the CPU",
}


def _names_device(node: ast.AST) -> str | None:
    """The device name in a string constant anywhere in ``node`` (e.g. both arms of ``"cuda" if ok else "cpu"``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and DEVICE_NAME.fullmatch(sub.value):
            return sub.value
    return None


def device_literals(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function or ``<module>``, what was found) of each hard-coded device in ``path``."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg in DEVICE_KEYWORDS and (name := _names_device(default)):
                    found.append((default.lineno, node.name, f"parameter {arg.arg}={name!r}"))
            func = node.name
        if isinstance(node, ast.Call):
            f = node.func
            attr = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if attr == "cuda" and isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id == "torch"):
                found.append((node.lineno, func, ".cuda()"))
            for kw in node.keywords:
                if kw.arg in DEVICE_KEYWORDS and (name := _names_device(kw.value)):
                    found.append((node.lineno, func, f"{kw.arg}={name!r}"))
            if attr in ("device", "to", "autocast") and node.args and (name := _names_device(node.args[0])):
                found.append((node.lineno, func, f"{attr}({name!r})"))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "<module>")
    return found


def _sources() -> list[Path]:
    return sorted(p for sub in ("zoo", "tasks") for p in (ROOT / sub).rglob("*.py"))


def test_no_hard_coded_device_outside_the_allow_list() -> None:
    bad = [
        f"{rel}:{line} in {func}: {what}"
        for p in _sources()
        for line, func, what in device_literals(p)
        if (rel := p.relative_to(ROOT).as_posix(), func) not in ALLOWED
    ]
    assert not bad, "hard-coded devices (take Task.device or zoo.device.model_device instead):\n" + "\n".join(bad)


def test_every_allow_list_entry_is_still_needed() -> None:
    used = {(p.relative_to(ROOT).as_posix(), func) for p in _sources() for _, func, _ in device_literals(p)}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"allow-list entries without a device literal any more (remove them): {stale}"


def test_the_scan_finds_each_form(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "import torch\n"
        "def load(path, map_location='cpu'):\n"  # 2: a parameter's default
        "    x = torch.zeros(3, device='cuda:1')\n"  # 3: device= keyword
        "    y = x.to('cpu')\n"  # 4: .to(name)
        "    z = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"  # 5: torch.device(...) of an expression
        "    w = x.cuda()\n"  # 6: .cuda()
        "    with torch.autocast('cuda'):\n"  # 7: autocast's device type
        "        pass\n"
        "    ok = x.device.type == 'cuda' and torch.cuda.is_available()\n"  # a question, not a placement
        "    return x.to(y.device), x.cpu().numpy()\n"
    )
    assert [(line, func) for line, func, _ in device_literals(f)] == [(n, "load") for n in range(2, 8)]
