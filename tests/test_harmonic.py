"""Harmonic networks (Ulicny et al., arXiv 1905.00135 / 2001.06570): the DCT bank against values worked
out by hand, the two Harm2d forms, GEM's harmonize recipe on the package's models, and learning on digits."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.harmonic import (
    Harm2d,
    dct_filters,
    dct_frequencies,
    harmonic_cifar_resnet110_wide,
    harmonic_resnet50,
    harmonic_small_cnn,
    harmonize,
)
from benchmark.models.resnet import cifar_resnet110_wide
from benchmark.models.small_cnn import SmallCNN
from benchmark.optim import SGD

S2 = math.sqrt(2) / 2  # cos(pi / 4) = -cos(3 pi / 4)
S3 = math.sqrt(3) / 2  # cos(pi / 6) = -cos(5 pi / 6); cos(pi / 2) = 0


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _kinds(model: nn.Module) -> dict[str, int]:
    mods = list(model.modules())
    return {
        "block": sum(isinstance(m, Harm2d) and m.use_bn for m in mods),
        "linear": sum(isinstance(m, Harm2d) and not m.use_bn for m in mods),
        "conv1x1": sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in mods),
        "conv_other": sum(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in mods),
    }


# --------------------------------------------------------------------------- the DCT bank

def test_dct_k2_by_hand():
    # cos(pi (x + 1/2) i / 2) for x = 0, 1: i = 0 -> (1, 1); i = 1 -> (S2, -S2).
    raw = torch.tensor([
        [[1, 1], [1, 1]],                        # (0, 0)
        [[S2, -S2], [S2, -S2]],                  # (0, 1): varies along the column y
        [[S2, S2], [-S2, -S2]],                  # (1, 0): varies along the row x
        [[0.5, -0.5], [-0.5, 0.5]],              # (1, 1)
    ])
    assert torch.allclose(dct_filters(2, l1_norm=False), raw, atol=1e-6)
    # L1 norms 4, 4 S2 = 2 sqrt 2, 2 sqrt 2, 2: every entry becomes +-1/4.
    assert torch.allclose(dct_filters(2), torch.sign(raw) / 4, atol=1e-6)


def test_dct_k3_by_hand():
    # Rows of cos(pi (x + 1/2) i / 3): i = 0 -> (1, 1, 1); i = 1 -> (S3, 0, -S3); i = 2 -> (1/2, -1, 1/2).
    bank = dct_filters(3)
    assert dct_frequencies(3)[5] == (1, 2) and dct_frequencies(3)[7] == (2, 1)
    assert torch.allclose(bank[0], torch.full((3, 3), 1 / 9), atol=1e-7)
    # (1, 2) = outer((S3, 0, -S3), (1/2, -1, 1/2)); L1 = 2 S3 * 2 = 2 sqrt 3, so S3 / 2 / (2 sqrt 3) = 1/8.
    expected_12 = torch.tensor([[1 / 8, -1 / 4, 1 / 8], [0, 0, 0], [-1 / 8, 1 / 4, -1 / 8]])
    assert torch.allclose(bank[5], expected_12, atol=1e-7)
    assert torch.allclose(bank[7], expected_12.T, atol=1e-7)  # (2, 1) is its transpose
    # (1, 1) unnormalised: outer((S3, 0, -S3), (S3, 0, -S3)) -> corners +-3/4.
    raw = dct_filters(3, l1_norm=False)
    assert raw[4][0, 0].item() == pytest.approx(0.75) and raw[4][0, 2].item() == pytest.approx(-0.75)
    assert raw[4][1].abs().max().item() < 1e-7


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_unnormalised_basis_is_orthogonal(k):
    # sum_x cos^2(pi (x + 1/2) i / k) = k for i = 0, k / 2 otherwise; the Gram matrix is diagonal.
    bank = dct_filters(k, l1_norm=False).double().reshape(k * k, -1)
    gram = bank @ bank.T
    expected = torch.tensor([(k if i == 0 else k / 2) * (k if j == 0 else k / 2) for i, j in dct_frequencies(k)])
    assert torch.allclose(gram, torch.diag(expected).double(), atol=1e-5)
    # L1 normalisation only rescales the filters: still orthogonal, each with unit L1 norm.
    normed = dct_filters(k).double().reshape(k * k, -1)
    off = normed @ normed.T - torch.diag(torch.diagonal(normed @ normed.T))
    assert off.abs().max() < 1e-6
    assert torch.allclose(normed.abs().sum(1), torch.ones(k * k, dtype=torch.float64), atol=1e-6)


def test_level_counts_and_kept_frequencies():
    # 3x3 by hand: level 1 -> DC only; 2 -> (0,0),(0,1),(1,0); 3 -> +(0,2),(1,1),(2,0); 4 -> 9 - 1 = 8.
    assert dct_frequencies(3, 2) == [(0, 0), (0, 1), (1, 0)]
    assert [len(dct_frequencies(3, lv)) for lv in range(1, 6)] == [1, 3, 6, 8, 9]
    for k in (2, 3, 5, 7):
        for level in range(1, 2 * k):
            r = 2 * k - 1 - level
            formula = level * (level + 1) // 2 if level <= k else k * k - r * (r + 1) // 2
            bank = dct_filters(k, level)
            assert bank.shape == (formula, k, k), (k, level)
            # The truncated bank is the prefix of the full one in the same (i, j) order.
            full = dct_filters(k)
            keep = [n for n, (i, j) in enumerate(dct_frequencies(k)) if i + j < level]
            assert torch.equal(bank, full[keep])
    with pytest.raises(ValueError):
        dct_filters(3, level=0)


# --------------------------------------------------------------------------- Harm2d

def test_bank_is_a_buffer_without_gradient():
    torch.manual_seed(0)
    for use_bn in (False, True):
        conv = Harm2d(3, 4, 3, padding=1, use_bn=use_bn)
        assert "dct" in dict(conv.named_buffers())
        assert all(p is not conv.dct for p in conv.parameters())
        assert not conv.dct.requires_grad
        bank = conv.dct.clone()
        opt = torch.optim.SGD(conv.parameters(), lr=0.5, weight_decay=0.1)
        conv(torch.randn(2, 3, 5, 5)).square().sum().backward()
        opt.step()
        assert conv.dct.grad is None and torch.equal(conv.dct, bank)
        assert conv.weight.grad is not None
    # A whole model: nothing of the bank's size shows up among the parameters.
    model = harmonic_small_cnn(1, 10)
    names = [n for n, _ in model.named_parameters()]
    assert not any("dct" in n for n in names)
    assert sum("dct" in n for n, _ in model.named_buffers()) == 3


def test_init_is_kaiming_fan_out():
    torch.manual_seed(0)
    conv = Harm2d(64, 128, 3)
    # Linear form: weight (out, in, nf) -> fan_out = out * nf = 128 * 9; std = sqrt(2 / fan_out).
    assert conv.weight.shape == (128, 64, 9)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.02)
    block = Harm2d(64, 128, 3, use_bn=True)
    # Block: 1x1 weight (out, in * nf, 1, 1) -> fan_out = out = 128.
    assert block.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.02)
    assert torch.equal(Harm2d(2, 3, 3).bias, torch.zeros(3))


@pytest.mark.parametrize("settings", [
    dict(stride=1, padding=1, dilation=1, groups=1, bias=False),
    dict(stride=2, padding=0, dilation=1, groups=1, bias=True),
    dict(stride=1, padding=2, dilation=2, groups=2, bias=True),
])
def test_linear_form_represents_the_plain_conv_exactly(settings):
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, **settings)
    harm = Harm2d.from_conv(plain)
    k2 = 9
    # Solve W_flat = A @ B for the coefficients A (B: the nf x k^2 bank, invertible with the full basis).
    basis = harm.dct.double().reshape(harm.num_filters, k2)
    target = plain.weight.detach().double().reshape(-1, k2)
    coef = torch.linalg.solve(basis.T, target.T).T
    with torch.no_grad():
        harm.weight.copy_(coef.reshape(harm.weight.shape).float())
        if plain.bias is not None:
            harm.bias.copy_(plain.bias)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(harm.filters(), plain.weight, atol=1e-5)
    assert torch.allclose(harm(x), plain(x), atol=1e-5)


def test_linear_form_fits_a_plain_conv_by_gradient_descent():
    torch.manual_seed(0)
    plain = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    harm = Harm2d.from_conv(plain)
    x = torch.randn(16, 3, 8, 8)
    with torch.no_grad():
        y = plain(x)
    opt = torch.optim.Adam(harm.parameters(), lr=0.05)
    first = F.mse_loss(harm(x), y).item()
    for _ in range(150):  # measured: loss 7.6e-8 of the first, filters within 1.2e-4
        opt.zero_grad()
        loss = F.mse_loss(harm(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4 * first
    assert torch.allclose(harm.filters(), plain.weight, atol=1e-2)


def test_truncated_linear_form_cannot_fit_high_frequencies():
    # Level 2 keeps DC and the two first-order filters: a pure (2, 2) filter is orthogonal to them, so
    # the best fit is zero -- if the level mask were ignored the fit would succeed.
    torch.manual_seed(0)
    harm = Harm2d(1, 1, 3, padding=1, bias=False, level=2)
    assert harm.weight.shape == (1, 1, 3)
    target = dct_filters(3, l1_norm=False)[8].reshape(1, 1, 3, 3)
    x = torch.randn(8, 1, 8, 8)
    y = F.conv2d(x, target, padding=1)
    opt = torch.optim.Adam(harm.parameters(), lr=0.05)
    for _ in range(100):  # the masked fit stays at 0.9999 of the target's energy from step 50 on
        opt.zero_grad()
        loss = F.mse_loss(harm(x), y)
        loss.backward()
        opt.step()
    assert loss.item() > 0.5 * y.square().mean().item()


def test_harmonic_block_shapes_and_channel_order():
    torch.manual_seed(0)
    block = Harm2d(3, 8, 3, stride=2, padding=1, use_bn=True)
    assert block.num_filters == 9
    assert block.weight.shape == (8, 27, 1, 1)
    assert isinstance(block.bn, nn.BatchNorm2d) and block.bn.num_features == 27 and not block.bn.affine
    assert block.bias is not None and block.bias.shape == (8,)
    seen = {}
    block.bn.register_forward_hook(lambda mod, inp, out: seen.update(maps=inp[0], normed=out))
    x = torch.randn(4, 3, 9, 9)
    out = block(x)
    plain = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert out.shape == plain(x).shape == (4, 8, 5, 5)
    # Map c * nf + f is DCT_f applied to input channel c (not f * ni + c).
    maps = seen["maps"]
    assert maps.shape == (4, 27, 5, 5)
    for c, f in [(0, 0), (1, 4), (2, 8), (2, 1)]:
        ref = F.conv2d(x[:, c:c + 1], block.dct[f][None, None], stride=2, padding=1)
        assert torch.allclose(maps[:, c * 9 + f:c * 9 + f + 1], ref, atol=1e-5)
    # Without affine parameters the BN output has zero mean and unit variance per map.
    assert seen["normed"].mean(dim=(0, 2, 3)).abs().max() < 1e-5
    # Level truncation shrinks the block: 6 filters per channel at level 3.
    small = Harm2d(3, 8, 3, use_bn=True, level=3)
    assert small.weight.shape == (8, 18, 1, 1) and small.bn.num_features == 18


@pytest.mark.parametrize("use_bn", [False, True])
@pytest.mark.parametrize("settings", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=5, stride=2, padding=2, dilation=1),
    dict(kernel_size=3, stride=1, padding=2, dilation=2),
    dict(kernel_size=7, stride=2, padding=3),
    dict(kernel_size=3, padding="same"),
])
def test_output_shape_matches_conv2d(settings, use_bn):
    x = torch.randn(2, 3, 13, 11)
    assert Harm2d(3, 4, use_bn=use_bn, **settings)(x).shape == nn.Conv2d(3, 4, **settings)(x).shape


def test_rejects_what_it_cannot_replace():
    with pytest.raises(ValueError):
        Harm2d(3, 4, (3, 5))
    with pytest.raises(ValueError):
        Harm2d.from_conv(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"))


# --------------------------------------------------------------------------- harmonize

def test_harmonize_small_cnn():
    torch.manual_seed(0)
    plain = SmallCNN(1, 10)
    assert _kinds(plain) == {"block": 0, "linear": 0, "conv1x1": 0, "conv_other": 3}
    model = harmonize(SmallCNN(1, 10))
    assert _kinds(model) == {"block": 1, "linear": 2, "conv1x1": 0, "conv_other": 0}
    # The stem (first conv) is the BN block; biases follow the originals (bias=False here).
    assert model.features[0][0].use_bn and not model.features[1][0].use_bn
    assert all(m.bias is None for m in model.modules() if isinstance(m, Harm2d))
    # The full basis re-parameterises: same parameter count as the plain network
    # (1*16*9 + 32 + 16*32*9 + 64 + 32*64*9 + 128 + 64*10 + 10 = 24,058; affine-free BN adds none).
    assert _count(plain) == _count(model) == 24_058
    with pytest.raises(ValueError):
        harmonize(model)


def test_harmonize_cifar_resnet110():
    torch.manual_seed(0)
    plain = cifar_resnet110_wide(3, 100)
    # Stem + 54 basic blocks x 2 convs; the shortcuts are parameter-free (no 1x1 convs).
    assert _kinds(plain) == {"block": 0, "linear": 0, "conv1x1": 0, "conv_other": 109}
    model = harmonize(cifar_resnet110_wide(3, 100))
    assert _kinds(model) == {"block": 1, "linear": 108, "conv1x1": 0, "conv_other": 0}
    assert model.stem[0].use_bn
    strides = [m.stride for m in model.modules() if isinstance(m, Harm2d)]
    assert strides.count((2, 2)) == 2  # the first conv of stages 2 and 3
    assert _count(model) == _count(plain)


def test_harmonize_keeps_1x1_and_bias_and_dilation():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=True),
        nn.ReLU(),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 4, 3, padding=2, dilation=2, bias=True),
        nn.Conv2d(4, 4, 3, bias=False),
    )
    one_by_one = model[2]
    harmonize(model)
    assert model[0].use_bn and model[0].bias is not None
    assert model[2] is one_by_one
    assert isinstance(model[3], Harm2d) and not model[3].use_bn
    assert model[3].dilation == (2, 2) and model[3].padding == (2, 2) and model[3].bias is not None
    assert isinstance(model[4], Harm2d) and model[4].bias is None
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4, 6, 6)


@pytest.mark.slow  # torchvision's import (~2.5 s), for a tenth of the fast suite
def test_harmonic_resnet50():
    with torch.device("meta"):  # the layout and the counts only: no weights to initialise (0.1 s, not 1.5)
        model = harmonic_resnet50(3, 7)
    # torchvision ResNet-50: 7x7 stem, 16 bottlenecks (each 1x1, 3x3, 1x1) and 4 1x1 downsample convs.
    assert _kinds(model) == {"block": 1, "linear": 16, "conv1x1": 36, "conv_other": 0}
    stem = model.features.conv1
    assert stem.use_bn and stem.num_filters == 49 and stem.weight.shape == (64, 147, 1, 1)
    assert stem.stride == (2, 2) and stem.padding == (3, 3)
    assert _count(model) == 23_508_032 + 2048 * 7 + 7  # same as the plain ResNet-50


@pytest.mark.slow  # 25 M weights to initialise and train a step
def test_harmonic_resnet50_trains_a_step():
    torch.manual_seed(0)
    _forward_backward(harmonic_resnet50(3, 7), torch.randn(2, 3, 32, 32), torch.tensor([1, 5]), 7)


# --------------------------------------------------------------------------- models train

def _forward_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, output_dim: int) -> None:
    """One training-mode step: finite outputs of the right shape, a finite gradient for every parameter."""
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], output_dim) and torch.isfinite(out).all()
    F.cross_entropy(out, y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("build, shape", [
    (harmonic_small_cnn, (3, 1, 8, 8)),
    pytest.param(harmonic_cifar_resnet110_wide, (2, 3, 32, 32), marks=pytest.mark.slow),
])
def test_harmonic_models_forward_backward(build, shape):
    torch.manual_seed(0)
    assert set(inspect.signature(build).parameters) == {"in_channels", "output_dim"}
    model = build(in_channels=shape[1], output_dim=6)
    _forward_backward(model, torch.randn(*shape), torch.tensor([0, 5, 3][: shape[0]]), 6)


def test_survives_channels_last_and_eval():
    # The trainer moves every model to channels_last (benchmark.runtime.prepare_model).
    torch.manual_seed(0)
    model = harmonic_small_cnn(1, 10).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
        model.to(memory_format=torch.channels_last)
        after = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(before, after, atol=1e-5)


def _digits_accuracy(shuffle_labels: bool) -> float:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    x = (x - x.mean()) / x.std()
    y = torch.tensor(bunch.target)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=gen)
    train, test = order[:1200], order[1200:]
    y_train = y[train]
    if shuffle_labels:  # break the image/label pairing of the training set only
        y_train = y_train[torch.randperm(len(train), generator=gen)]
    torch.manual_seed(0)
    model = harmonic_small_cnn(1, 10)
    # The trainer's SGD: torch.optim's constructor imports torch._dynamo (1.5 s).
    opt = SGD([{"params": list(model.parameters())}], lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(100):
        batch = torch.randint(len(train), (64,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(x[train][batch]), y_train[batch]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(x[test]).argmax(1) == y[test]).float().mean().item()


@pytest.mark.slow  # test_learning.py trains harmonic as a cell
def test_harmonic_small_cnn_learns_digits():
    # 10 classes: chance is 0.1. Held-out accuracy after 100 SGD steps of batch 64 (measured: 0.975, and
    # 0.099 with shuffled training labels).
    assert _digits_accuracy(shuffle_labels=False) > 0.85
    assert _digits_accuracy(shuffle_labels=True) < 0.2


def test_numpy_and_torch_banks_agree():
    # An independent float64 numpy construction straight from the formula, for k = 5, level 6.
    k, level = 5, 6
    rows = []
    for i in range(k):
        for j in range(k):
            if i + j < level:
                f = np.array([[math.cos(math.pi * (x + 0.5) * i / k) * math.cos(math.pi * (yy + 0.5) * j / k)
                               for yy in range(k)] for x in range(k)])
                rows.append(f / np.abs(f).sum())
    assert np.allclose(dct_filters(k, level).numpy(), np.stack(rows), atol=1e-7)
