"""Discrete networks, published parameter counts, and the DARTS supernet."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.space.network import count_parameters
from zoo.space.published import PUBLISHED
from zoo.space.supernet import SuperNet

# Parameters of the CIFAR-10 evaluation network (C=36, 20 cells, auxiliary head excluded)
# as counted by the DARTS evaluation code: DARTS-V2 3.3M is the paper's Table 1 figure
# (3,349,342 exactly). AmoebaNet-A there is 3.15M (the 3.2M of the paper's table is the
# AmoebaNet authors' own network, which the DARTS code does not reproduce exactly).
EXPECTED_M = {"darts_v2": 3.35, "darts_v1": 3.17, "amoebanet_a": 3.15}


def test_darts_v2_parameter_count_is_the_papers() -> None:
    model = zoo.create_model("darts_v2", num_classes=10, init_channels=36, layers=20, auxiliary=True)
    assert count_parameters(model) == 3_349_342
    assert round(count_parameters(model) / 1e6, 1) == 3.3
    assert count_parameters(model, exclude=()) > 3_349_342  # the auxiliary head exists and is excluded


@pytest.mark.parametrize("name", sorted(EXPECTED_M))
def test_published_parameter_counts(name: str) -> None:
    model = zoo.create_model(name, num_classes=10, init_channels=36, layers=20, auxiliary=True)
    assert round(count_parameters(model) / 1e6, 2) == EXPECTED_M[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_discrete_network_forward_backward_and_features(name: str) -> None:
    model = zoo.create_model(name, num_classes=5, init_channels=8, layers=5, auxiliary=True, in_chans=1, drop_path_prob=0.2)
    model.train()
    x = torch.randn(3, 1, 15, 15)
    logits, aux = model(x)
    assert logits.shape == (3, 5) and aux.shape == (3, 5)
    (logits.sum() + aux.sum()).backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("aux_head"))
    feats = model.forward_features(x)
    assert [f.shape[1] for f in feats] == [i["num_chs"] for i in model.feature_info]
    assert [f.shape[-1] for f in feats] == [-(-15 // i["reduction"]) for i in model.feature_info]
    model.eval()
    assert model(x).shape == (3, 5)


def test_imagenet_stem_gives_strides_8_16_32() -> None:
    model = zoo.create_model("darts_v2", num_classes=0, init_channels=8, layers=6, stem="imagenet")
    assert [i["reduction"] for i in model.feature_info] == [8, 16, 32]
    feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 8), (4, 4), (2, 2)]


def test_supernet_forward_backward_reaches_alpha_and_derives_genotype() -> None:
    torch.manual_seed(0)
    net = SuperNet(num_classes=4, init_channels=4, layers=3, in_chans=1)
    x = torch.randn(4, 1, 9, 9)
    out = net(x)
    assert out.shape == (4, 4)
    out.square().mean().backward()
    for a in net.arch_parameters():
        assert a.grad is not None and float(a.grad.abs().sum()) > 0
    assert {id(p) for p in net.weight_parameters()}.isdisjoint({id(a) for a in net.arch_parameters()})
    # Make one op dominate everywhere: the derived genotype must pick it on every edge.
    with torch.no_grad():
        for a in net.arch_parameters():
            a.zero_()
            a[:, net.primitives.index("sep_conv_3x3")] = 5.0
    g = net.genotype()
    assert all(op == "sep_conv_3x3" for op, _ in g.normal + g.reduce)
    feats = net.forward_features(x)
    assert [f.shape[1] for f in feats] == [i["num_chs"] for i in net.feature_info]


def test_supernet_genotype_ignores_none_and_picks_top_two_edges() -> None:
    net = SuperNet(num_classes=2, init_channels=4, layers=3, in_chans=1)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.fill_(0.0)
            a[:, 0] = 10.0  # 'none' strongest everywhere: must still be ignored
            # node 0 edges are rows 0,1; node 1 rows 2,3,4: favour input 2 (row 4) via max_pool
            a[4, net.primitives.index("max_pool_3x3")] = 3.0
            a[3, net.primitives.index("dil_conv_5x5")] = 2.0
    g = net.genotype()
    assert all(op != "none" for op, _ in g.normal)
    assert set(g.normal[2:4]) == {("max_pool_3x3", 2), ("dil_conv_5x5", 1)}


def test_create_model_errors_are_clear() -> None:
    from zoo.hub.download import HubError

    with pytest.raises(HubError, match=r"unknown zoo entry 'resnet50' .*allowed: amoebanet_a, (.*, )?darts_v1, darts_v2"):
        zoo.create_model("resnet50")
    with pytest.raises(zoo.space.GenotypeError, match="unknown; allowed: amoebanet_a"):
        zoo.models.create_model("resnet50")
    with pytest.raises(ValueError, match=r"^layers=0 is invalid; allowed: an integer >= 1$"):
        zoo.create_model("darts_v2", num_classes=10, layers=0)
    with pytest.raises(ValueError, match=r"^init_channels=-4 is invalid; allowed: an integer >= 1$"):
        zoo.create_model("darts_v2", num_classes=10, init_channels=-4)


def test_the_auxiliary_head_is_excluded_inside_a_wrapper() -> None:
    """A task's model wraps the network (``NormalizedModel.net``): its auxiliary head is still not counted."""
    net = zoo.create_model("darts_v2", num_classes=10, init_channels=8, layers=5, auxiliary=True)
    wrapped = torch.nn.Sequential(torch.nn.Identity(), net)
    assert count_parameters(wrapped) == count_parameters(net) < count_parameters(net, exclude=())
