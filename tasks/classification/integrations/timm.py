"""Zoo classification entries in timm's model registry as ``zoo_NAME``.

``zoo.register_timm()`` adds one entrypoint per classification entry with timm's
``register_model`` and a pretrained config whose ``file`` is the entry's
``model.safetensors`` in the zoo cache. ``timm.create_model("zoo_NAME", pretrained=True)``
first fetches the entry through :func:`zoo.hub.api.fetch_entry` (checksum verified,
no network beyond the registry's URLs), then lets timm's ``build_model_with_cfg`` load
that safetensors file, so timm's own head replacement (``num_classes=``), input
channel adaptation (``in_chans=``) and ``features_only=True`` (stage outputs through forward
hooks, ``out_indices=`` to pick stages) apply. Images go in scaled to [0, 1]: the
normalisation is part of the model, so the config's mean/std are 0/1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zoo.hub.facts import BRIDGES, hub_facts
from zoo.hub.registry import Entry, load_entries

default_cfgs: dict[str, dict[str, Any]] = {}  # read by timm's register_model
__all__: list[str] = []


def pretrained_cfg(entry: Entry) -> dict[str, Any]:
    from zoo.hub.api import entry_dir

    model = entry.model
    wrapped = model.get("mean") is not None and model.get("std") is not None
    prefix = "net." if wrapped else ""
    pre = entry.data.get("preprocessing") or hub_facts(entry.task).preprocessing({"model": model, "data": {}})
    chans, h, w = (int(v) for v in pre.get("input_size") or (model.get("in_chans", 3), 32, 32))
    classifier: Any = f"{prefix}classifier"
    if model.get("auxiliary"):
        classifier = (f"{prefix}classifier", f"{prefix}aux_head.classifier")
    cfg: dict[str, Any] = {
        "num_classes": int(model.get("num_classes", 10)),
        "input_size": (chans, h, w),
        "mean": (0.0,) * chans,
        "std": (1.0,) * chans,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "first_conv": f"{prefix}stem0.0",
        "classifier": classifier,
        "license": str(entry.data.get("license") or "unknown").lower(),
        "description": entry.data.get("description"),
    }
    if entry.data.get("labels"):
        cfg["label_names"] = tuple(str(l) for l in entry.data["labels"])
    if entry.has_weights:
        cfg["file"] = str(entry_dir(entry) / "model.safetensors")
    return cfg


def _entrypoint(entry: Entry, registries: Any) -> Callable[..., Any]:
    def fn(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: dict[str, Any] | None = None,
        cache_dir: Any = None,
        **kwargs: Any,
    ) -> Any:
        from timm.models import build_model_with_cfg

        from zoo.hub.api import fetch_entry
        from zoo.hub.registry import get_entry
        from zoo.models import create_model

        overlay = dict(pretrained_cfg_overlay or {})
        if pretrained:
            current = get_entry(entry.name, registries)
            overlay["file"] = str(fetch_entry(current) / "model.safetensors")  # verified against the registry's sha256
        args = dict(entry.model)
        if kwargs.get("features_only"):
            # stage outputs via forward hooks on the whole model: the normalisation in front runs,
            # and the cells (inside a ModuleList) need no flattening into a Sequential
            kwargs.setdefault("feature_cls", "hook")
            if "out_indices" not in kwargs:  # every stage (timm's default assumes five)
                kwargs["out_indices"] = tuple(range(len(create_model(**args).feature_info)))

        def build(**kw: Any) -> Any:
            return create_model(**{**args, **kw})

        return build_model_with_cfg(
            build, entry.timm_name, pretrained, pretrained_cfg=pretrained_cfg, pretrained_cfg_overlay=overlay, **kwargs
        )

    fn.__name__ = entry.timm_name
    fn.__qualname__ = entry.timm_name
    fn.__module__ = __name__
    fn.__doc__ = f"zoo entry {entry.name}: {entry.data.get('description', '')}"
    return fn


@BRIDGES.register("timm")
def register_timm(registry: str | Iterable[str] | None = None) -> list[str]:
    """Registers every classification entry with timm; returns the timm model names."""
    import warnings

    from timm.models import register_model

    names = []
    for entry in load_entries(registry).values():
        if not hub_facts(entry.task).timm:
            continue
        default_cfgs[entry.timm_name] = pretrained_cfg(entry)
        fn = _entrypoint(entry, registry)
        globals()[entry.timm_name] = fn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re-registering after a registry change overwrites on purpose
            register_model(fn)
        names.append(entry.timm_name)
    return sorted(names)
