"""segmentation-models-pytorch hand-off: zoo image models as smp encoders.

``register_smp()`` puts each zoo image entry (segmentation, classification and detection
entries, published or trained, or bundle directories) into smp's encoder table as
``zoo-<name>``, so ``smp.Unet(encoder_name="zoo-<name>", encoder_weights=None, classes=K)``,
``smp.FPN``, ``smp.create_model(...)`` and smp's losses work as with its own encoders. The
encoder is built with the entry's trained weights (``weights=True``, the default; they are
fetched into the zoo cache, sha256-checked): ``encoder_weights=None`` only tells smp not to
download anything of its own.

The encoder returns what smp's decoders expect, the input then features at strides 2, 4, 8,
16, 32 (``depth`` of them). A searched segmenter gives its stem's stride-2 features, its stem
at stride 4 and, per level of its path, the output of the last layer at that level
(:meth:`ZooEncoder.stage_features`); a cell network gives the output of each stage. A stride
the model has no features for is filled without new parameters: the next finer features
average-pooled (or, below the first stage, the normalised input).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.hub.facts import BRIDGES

PREFIX = "zoo-"
TASKS = ("segmentation", "classification", "detection")


def _load(ref: str, weights: bool) -> nn.Module:
    import zoo

    if Path(ref).expanduser().exists():
        return zoo.from_pretrained(ref)
    from zoo.hub.registry import get_entry

    entry = get_entry(ref)
    return zoo.create_model(ref, pretrained=bool(weights and entry.has_weights))


def _parts(model: nn.Module) -> tuple[nn.Module, Any, int]:
    """(normalisation, feature source, input channels) of a zoo image model."""
    from tasks.segmentation.model import SegmentationNet

    if isinstance(model, SegmentationNet):
        model.aspp, model.decoder = nn.Identity(), nn.Identity()  # the encoder is stem + path cells; smp brings the decoder
        return model.normalize, model, int(model.stem.conv0[0].in_channels)
    if hasattr(model, "backbone") and hasattr(model, "mean"):  # a detector: normalisation buffers + cell backbone
        norm = _Buffers(model.mean, model.std)  # type: ignore[arg-type]
        return norm, model.backbone, int(model.mean.numel())  # type: ignore[union-attr]
    net = getattr(model, "net", model)
    norm = getattr(model, "normalize", nn.Identity())
    if not hasattr(net, "forward_features"):
        raise ValueError(f"{type(model).__name__} has no stage features; smp encoders are made of zoo image models")
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    return norm, net, int(first.in_channels)


class _Buffers(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _smp_mixin() -> type:
    from segmentation_models_pytorch.encoders._base import EncoderMixin

    return EncoderMixin


class ZooEncoder(nn.Module):
    """A zoo image model as an smp encoder (``EncoderMixin`` is added when smp registers it).

    Args:
        ref: a zoo name or a bundle directory.
        weights: load the entry's trained weights (architecture-only entries start random).
        depth, output_stride, in_channels: as smp passes them (``output_stride`` must be 32).
    """

    def __init__(self, ref: str, weights: bool = True, depth: int = 5, output_stride: int = 32, **_: Any) -> None:
        super().__init__()
        if output_stride != 32:
            raise ValueError(
                f"encoder zoo-{ref}: output_stride={output_stride} is not supported (zoo encoders keep their strides); allowed: 32"
            )
        self.ref = ref
        model = _load(ref, weights)
        self.normalize, self.body, self._in_channels = _parts(model)
        self._depth = depth
        self._output_stride = 32
        with torch.no_grad():
            size = 64
            feats = self._features(torch.zeros(1, self._in_channels, size, size))
        self._out_channels = [self._in_channels] + [int(f.shape[1]) for f in feats[1:]]
        self.is_segmenter = hasattr(self.body, "stage_features")

    @property
    def out_channels(self) -> list[int]:
        return self._out_channels[: self._depth + 1]

    @property
    def output_stride(self) -> int:
        return min(self._output_stride, 2**self._depth)

    def stage_features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features by stride of a normalised input."""
        if hasattr(self.body, "stage_features"):
            return self.body.stage_features(x)
        feats = self.body.forward_features(x)
        out: dict[int, torch.Tensor] = {}
        for f in feats:
            out[int(round(x.shape[-1] / f.shape[-1]))] = f  # the deepest map at each stride wins
        return out

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        by_stride = self.stage_features(self.normalize(x))
        out, prev = [x], self.normalize(x)
        for k in range(1, self._depth + 1):
            stride = 2**k
            f = by_stride.get(stride)
            if f is None:
                size = (-(-x.shape[-2] // stride), -(-x.shape[-1] // stride))
                f = F.adaptive_avg_pool2d(prev, size)
            out.append(f)
            prev = f
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._features(x)

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Another number of image channels: the first convolution's weights summed over its inputs and spread
        evenly over the new ones, the normalisation averaged (the same adaptation as fine-tuning)."""
        if in_channels == self._in_channels:
            return
        first = next(m for m in self.body.modules() if isinstance(m, nn.Conv2d))
        with torch.no_grad():
            w = first.weight.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
            first.weight = nn.Parameter(w)
            first.in_channels = in_channels
            for name in ("mean", "std"):
                buf = getattr(self.normalize, name, None)
                if isinstance(buf, torch.Tensor):
                    setattr(self.normalize, name, buf.mean().expand(1, in_channels, 1, 1).clone())
        self._in_channels = in_channels
        self._out_channels[0] = in_channels

    def get_stages(self) -> dict[int, list[nn.Module]]:
        return {}

    def make_dilated(self, output_stride: int) -> None:
        raise ValueError(
            f"encoder zoo-{self.ref}: dilation (output_stride={output_stride}) is not supported; use a decoder at output stride 32"
        )


def entry_names() -> list[str]:
    from zoo.hub.registry import load_entries

    return [e.name for e in load_entries().values() if e.task in TASKS]


@BRIDGES.register("smp")
def register_smp(names: Iterable[str] | None = None, weights: bool = True) -> list[str]:
    """Registers zoo entries (default: every image entry of the zoo) or bundle directories as smp
    encoders ``zoo-<name>``; returns the encoder names. The models are built when smp asks for them."""
    from segmentation_models_pytorch.encoders import encoders

    cls = type("ZooSmpEncoder", (ZooEncoder, _smp_mixin()), {})
    out = []
    for ref in list(names) if names is not None else entry_names():
        key = PREFIX + (Path(ref).name if Path(ref).expanduser().exists() else ref)
        encoders[key] = {"encoder": cls, "pretrained_settings": {}, "params": {"ref": str(ref), "weights": bool(weights)}}
        out.append(key)
    return out
