"""ResNet-50 and the wide CIFAR ResNet-110: shapes at real input sizes, parameter counts,
random initialisation only, and a two-step SGD smoke test on CPU."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from fixtures.tensors import assert_close

from benchmark.models.resnet import BasicBlock, CifarResNet, cifar_resnet110_wide, resnet50


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sgd_smoke(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Two SGD steps: finite losses, and every parameter moves (gradients reach every layer)."""
    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        assert torch.isfinite(loss), loss
        loss.backward()
        opt.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p.detach(), before[name])]
    assert unchanged == []


# --------------------------------------------------------------------------- ResNet-50

@pytest.mark.slow  # torchvision's import (~2.5 s), for a tenth of the fast suite
def test_resnet50_has_no_way_to_ask_for_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pre-trained weight download was attempted")

    import torchvision.models._api

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    model = resnet50(in_channels=3, output_dim=10)
    assert model.head.out_features == 10
    assert set(inspect.signature(resnet50).parameters) == {"in_channels", "output_dim"}
    with pytest.raises(TypeError):
        resnet50(in_channels=3, output_dim=10, weights="IMAGENET1K_V2")  # type: ignore[call-arg]
    # Two constructions give different random weights (nothing fixed is loaded).
    other = resnet50(in_channels=3, output_dim=10)
    assert not torch.equal(model.features.conv1.weight, other.features.conv1.weight)


@pytest.mark.slow  # torchvision's import (~2.5 s), for a tenth of the fast suite
def test_resnet50_parameter_count():
    with torch.device("meta"):  # shapes only: nothing to initialise
        # torchvision ResNet-50: 23,508,032 below the classifier; linear 2048 -> 200: 409,800.
        assert _count(resnet50(in_channels=3, output_dim=200)) == 23_508_032 + 2048 * 200 + 200
        # A 1-channel stem: 64 x 1 x 7 x 7 instead of 64 x 3 x 7 x 7.
        assert _count(resnet50(in_channels=1, output_dim=200)) == 23_917_832 - 64 * 2 * 49


@pytest.mark.slow
def test_resnet50_output_shape_at_448():
    torch.manual_seed(0)
    model = resnet50(in_channels=3, output_dim=200).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 448, 448))
    assert out.shape == (2, 200) and torch.isfinite(out).all()


@pytest.mark.slow  # a real step of the full-size model
def test_resnet50_sgd_smoke():
    torch.manual_seed(0)
    model = resnet50(in_channels=3, output_dim=7)
    _sgd_smoke(model, torch.randn(2, 3, 64, 64), torch.tensor([1, 5]))
    one_channel = resnet50(in_channels=1, output_dim=7).eval()
    with torch.no_grad():
        assert one_channel(torch.randn(2, 1, 64, 64)).shape == (2, 7)


# --------------------------------------------------------------------------- CIFAR ResNet-110 (wide)

def test_resnet110_wide_shape_and_layout():
    torch.manual_seed(0)
    model = cifar_resnet110_wide(in_channels=3, output_dim=100).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100) and torch.isfinite(out).all()
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 3 * 18
    assert [b.conv2.out_channels for b in blocks[::18]] == [32, 64, 128]
    assert [b.stride for b in blocks].count(2) == 2
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == 110  # 1 stem conv + 108 block convs + the linear layer
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)


def test_resnet110_wide_parameter_count():
    # Convs 3*3*(3*32 + 36*32*32 + 32*64 + 35*64*64 + 64*128 + 35*128*128) = 6,889,824,
    # BN 2*(37*32 + 36*64 + 36*128) = 16,192, linear 128*100 + 100 = 12,900.
    convs = 9 * (3 * 32 + 36 * 32 * 32 + 32 * 64 + 35 * 64 * 64 + 64 * 128 + 35 * 128 * 128)
    bn = 2 * (37 * 32 + 36 * 64 + 36 * 128)
    assert _count(cifar_resnet110_wide(in_channels=3, output_dim=100)) == convs + bn + 128 * 100 + 100 == 6_905_092


def test_standard_width_cifar_resnets_match_he_et_al():
    """With widths 16/32/64 and parameter-free shortcuts: ResNet-20 0.27M, ResNet-110 1.7M (He et al. 2016)."""
    assert _count(CifarResNet(3, 10, blocks=3, widths=(16, 32, 64))) == 269_722
    assert _count(CifarResNet(3, 10, blocks=18, widths=(16, 32, 64))) == 1_727_962


def test_parameter_free_shortcut_pools_and_pads_channels():
    block = BasicBlock(4, 8, stride=2)
    x = torch.randn(1, 4, 6, 6)
    short = block.shortcut(x)
    assert short.shape == (1, 8, 3, 3)
    assert_close(short[:, 2:6], F.avg_pool2d(x, 2))
    assert short[:, :2].abs().sum() == 0 and short[:, 6:].abs().sum() == 0
    same = BasicBlock(4, 4, stride=1)
    assert torch.equal(same.shortcut(x), x)


def test_resnet110_wide_he_init():
    torch.manual_seed(0)
    model = cifar_resnet110_wide(in_channels=3, output_dim=100)
    conv = model.stages[-1].conv2  # 128 x 128 x 3 x 3: fan_out = 1152
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.02)
    bn = model.stages[-1].bn2
    assert torch.equal(bn.weight, torch.ones(128)) and torch.equal(bn.bias, torch.zeros(128))


@pytest.mark.slow  # a real step of the full-size model
def test_resnet110_wide_sgd_smoke():
    torch.manual_seed(0)
    model = cifar_resnet110_wide(in_channels=3, output_dim=100)
    _sgd_smoke(model, torch.randn(2, 3, 32, 32), torch.tensor([3, 97]))
