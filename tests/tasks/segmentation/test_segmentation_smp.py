"""The segmentation-models-pytorch hand-off: zoo bundles and entries as smp encoders ``zoo-<name>``,
under smp's Unet and FPN decoders, trained with smp's own loss, with the searched weights inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.segmentation.model import create_segmenter
from tasks.segmentation.space import SegmentationGenotype, SegmentationSpace
from zoo.hub.bundle import save_bundle

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A task=segmentation bundle (grayscale, 2 classes) whose path never reaches stride 32."""
    g = SegmentationGenotype(SegmentationSpace(steps=2, layers=4).sample(np.random.default_rng(0)).cell, (0, 1, 2, 1))
    args = {
        "arch": g.to_json(),
        "num_classes": 2,
        "init_channels": 4,
        "in_chans": 1,
        "aspp_channels": 8,
        "decoder_channels": 8,
        "mean": [0.3],
        "std": [0.2],
    }
    torch.manual_seed(0)
    model = create_segmenter(**args)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # weights no fresh model has
    model.eval()
    d = tmp_path_factory.mktemp("smp") / "nuclei-bundle"
    save_bundle(d, model, {"task": "segmentation", "model": args, "labels": ["background", "nucleus"], "data": {"name": "nuclei"}})
    return d


def test_bundle_is_an_smp_encoder_under_unet_and_fpn_and_trains_with_smp_losses(bundle: Path) -> None:
    import segmentation_models_pytorch as smp

    import zoo
    from tasks.segmentation.integrations.smp import register_smp

    assert register_smp([str(bundle)]) == ["zoo-nuclei-bundle"]
    searched = zoo.from_pretrained(str(bundle))
    for arch in (smp.Unet, smp.FPN):
        torch.manual_seed(0)
        model = arch(encoder_name="zoo-nuclei-bundle", encoder_weights=None, in_channels=1, classes=3)
        enc = model.encoder
        # the searched weights are inside the encoder
        ref = dict(searched.named_parameters())
        for name, p in enc.body.named_parameters():
            assert torch.equal(p, ref[name]), name
        # strides 1..32: the input, the stem at 2 and 4, the path's levels; stride 32 (never visited) pooled
        x = torch.rand(2, 1, 64, 96)
        feats = enc(x)
        assert [tuple(f.shape[-2:]) for f in feats] == [(64 // 2**k, 96 // 2**k) for k in range(6)]
        with torch.no_grad():
            searched.eval()
            enc.eval()
            by_stride = searched.stage_features(searched.normalize(x))
            out = enc(x)
        assert torch.equal(out[3], by_stride[8]) and torch.equal(out[4], by_stride[16])
        # train a few steps with smp's Dice loss on a learnable target
        model.train()
        loss_fn = smp.losses.DiceLoss("multiclass")
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(1)
        xb = torch.nn.functional.interpolate(torch.rand(4, 1, 8, 8, generator=gen), size=(64, 64), mode="bilinear")  # smooth blobs
        yb = (xb[:, 0] > 0.5).long() + (xb[:, 0] > 0.8).long()
        losses = []
        for _ in range(25):
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < 0.7 * losses[0], (arch.__name__, losses)


def test_rgb_input_adapts_the_stem_and_other_entries_register(bundle: Path) -> None:
    import segmentation_models_pytorch as smp

    from tasks.segmentation.integrations.smp import register_smp

    register_smp([str(bundle)])
    model = smp.Unet(encoder_name="zoo-nuclei-bundle", encoder_weights=None, in_channels=3, classes=2)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    # the stem's weights averaged over the grayscale input and repeated: a gray RGB image gives the grayscale features
    gray = torch.rand(1, 1, 64, 64)
    gray_model = smp.Unet(encoder_name="zoo-nuclei-bundle", encoder_weights=None, in_channels=1, classes=2)
    gray_model.eval(), model.eval()
    with torch.no_grad():
        a = gray_model.encoder(gray)[2]
        b = model.encoder(gray.repeat(1, 3, 1, 1))[2]
    assert torch.allclose(a, b, atol=1e-5)
    # every image entry of the zoo registers, the published Auto-DeepLab among them
    names = register_smp(weights=False)
    assert {"zoo-autodeeplab", "zoo-digits-darts", "zoo-trees-fpn-darts"} <= set(names)
    with pytest.raises(ValueError, match="output_stride=16 is not supported"):
        smp.DeepLabV3(encoder_name="zoo-nuclei-bundle", encoder_weights=None, in_channels=1, classes=2, encoder_output_stride=16)
