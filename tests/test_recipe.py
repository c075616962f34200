"""The strong-baseline recipe: Mixup, CutMix, TrivialAugment wide (against torchvision's single-image ops), EMA."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

import benchmark.recipe.mixing as mixing
from benchmark.recipe.ema import ModelEMA, adjusted_decay
from benchmark.recipe.mixing import cutmix, mixed_targets, mixup, sample_beta
from benchmark.recipe.trivial_augment import OPS, apply, draw, magnitude_table, trivial_augment_wide


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: intra-op threads only add contention on a shared machine (6x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _index_images(n: int, c: int = 3, h: int = 32, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is constant 10 i and has label i, so every mixed pixel tells where it came from."""
    labels = torch.arange(n)
    return (10.0 * labels.float())[:, None, None, None].expand(n, c, h, w).clone(), labels


# --------------------------------------------------------------------------- Beta draws

@pytest.mark.parametrize(("a", "b"), [(0.4, 0.4), (2.0, 5.0), (1.0, 1.0)])
def test_beta_draws_have_the_beta_moments(a: float, b: float) -> None:
    # Beta(a, b): mean a / (a + b), variance a b / ((a + b)^2 (a + b + 1)).
    # (0.4, 0.4): 0.5 and 0.16 / (0.64 * 1.8) = 0.1389; (2, 5): 2/7 = 0.2857 and 10 / (49 * 8) = 0.02551;
    # (1, 1): uniform, 0.5 and 1/12. The asymmetric case fails if a and b are swapped (mean 5/7).
    draws = sample_beta(a, b, _gen(1), shape=(40_000,)).double()
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean().item() == pytest.approx(mean, abs=4 * math.sqrt(var / 40_000))
    assert draws.var().item() == pytest.approx(var, rel=0.03)


def test_beta_draws_follow_the_generator() -> None:
    assert torch.equal(sample_beta(0.4, 0.4, _gen(3), (5,)), sample_beta(0.4, 0.4, _gen(3), (5,)))
    assert not torch.equal(sample_beta(0.4, 0.4, _gen(3), (5,)), sample_beta(0.4, 0.4, _gen(4), (5,)))


# --------------------------------------------------------------------------- Mixup

def test_mixup_pixels_are_the_formula_with_the_permuted_partner() -> None:
    x, y = _index_images(16)
    mixed, y_a, y_b, lam = mixup(x, y, _gen(0))
    assert lam.ndim == 0 and 0 < lam.item() < 1
    assert torch.equal(y_a, y)
    assert sorted(y_b.tolist()) == list(range(16)) and not torch.equal(y_b, y)  # a permutation, not the identity
    # Image i is lam 10 i + (1 - lam) 10 y_b[i]: the partner is the image whose label is y_b[i].
    expected = lam * 10.0 * y_a.float() + (1 - lam) * 10.0 * y_b.float()
    assert torch.allclose(mixed, expected[:, None, None, None].expand_as(mixed), atol=1e-4)


def test_mixup_is_deterministic_per_seed_and_off_for_alpha_zero() -> None:
    x = torch.randint(0, 256, (8, 3, 6, 6), generator=_gen(5), dtype=torch.uint8)
    y = torch.arange(8)
    first, second = mixup(x, y, _gen(2)), mixup(x, y, _gen(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    mixed, _, _, lam = mixup(x, y, _gen(2), alpha=0.0)
    assert lam.item() == 1.0 and torch.equal(mixed, x.float())


def test_mixed_targets_by_hand() -> None:
    # lam = 0.3: sample 0 (y_a 0, y_b 1) -> [0.3, 0.7, 0]; sample 1 (y_a = y_b = 2) -> [0, 0, 1].
    targets = mixed_targets(torch.tensor([0, 2]), torch.tensor([1, 2]), torch.tensor(0.3), num_classes=3)
    assert torch.allclose(targets, torch.tensor([[0.3, 0.7, 0.0], [0.0, 0.0, 1.0]]))


@pytest.mark.parametrize("method", ["mixup", "cutmix"])
def test_soft_targets_keep_the_label_mass(method: str) -> None:
    x, y = _index_images(12)
    for seed in range(5):
        out = mixup(x, y, _gen(seed)) if method == "mixup" else cutmix(x, y, _gen(seed), p=1.0)
        targets = mixed_targets(out[1], out[2], out[3], num_classes=12)
        assert torch.allclose(targets.sum(dim=1), torch.ones(12))
        assert (targets >= 0).all()


# --------------------------------------------------------------------------- CutMix

def _box(changed: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the changed pixels of an (H, W) mask, which must form one rectangle."""
    rows = changed.any(dim=1).nonzero().flatten()
    cols = changed.any(dim=0).nonzero().flatten()
    top, bottom, left, right = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
    assert changed[top:bottom, left:right].all() and changed.sum().item() == (bottom - top) * (right - left)
    return top, bottom, left, right


def test_cutmix_lam_is_the_share_of_the_original_image() -> None:
    x, y = _index_images(8, h=20, w=24)
    boxes = 0
    for seed in range(20):
        mixed, y_a, y_b, lam = cutmix(x, y, _gen(seed), p=1.0)
        assert mixed.dtype == x.dtype
        for i in range(8):
            if y_b[i] == y_a[i]:
                continue
            own = mixed[i, 0] == 10.0 * i
            pasted = mixed[i, 0] == 10.0 * y_b[i]
            assert (own | pasted).all()  # nothing but the two images
            assert torch.equal(mixed[i, 1], mixed[i, 0]) and torch.equal(mixed[i, 2], mixed[i, 0])
            assert lam.item() == pytest.approx(own.float().mean().item(), abs=1e-6)
            if pasted.any():
                _box(pasted)
                boxes += 1
    assert boxes > 50


def test_cutmix_box_sides_are_sqrt_one_minus_lam(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fix the Beta draw at 0.75: sides floor(32 sqrt(0.25)) = 16, half-sides 8, so the box is rows
    # [cy - 8, cy + 8) clipped to [0, 32): 16 rows unless clipped at an edge (then 8..15 rows).
    monkeypatch.setattr(mixing, "sample_beta", lambda *args, **kwargs: torch.tensor(0.75))
    x, y = _index_images(6)
    for seed in range(30):
        mixed, _, y_b, lam = cutmix(x, y, _gen(seed), p=1.0)
        i = int((y_b != y).nonzero()[0])  # seeds 0..29 never draw the identity permutation
        top, bottom, left, right = _box(mixed[i, 0] != 10.0 * i)
        for low, high in ((top, bottom), (left, right)):
            assert high - low == 16 or (low == 0 and 8 <= high < 16) or (high == 32 and 16 < low <= 24)
        assert lam.item() == pytest.approx(1 - (bottom - top) * (right - left) / 1024)


def test_cutmix_without_paste_leaves_the_batch() -> None:
    x, y = _index_images(6)
    mixed, _, _, lam = cutmix(x, y, _gen(0), p=0.0)
    assert lam.item() == 1.0 and torch.equal(mixed, x)
    pasted = [cutmix(x, y, _gen(seed), p=0.5)[3].item() < 1.0 for seed in range(200)]
    assert 0.4 < sum(pasted) / 200 < 0.6


# --------------------------------------------------------------------------- TrivialAugment wide

def _torchvision_op(img: torch.Tensor, name: str, m: float, interpolation: str = "nearest") -> torch.Tensor:
    """The op as torchvision's TrivialAugmentWide applies it to one image (fill 0)."""
    from torchvision.transforms.v2 import functional as TF  # here: importing torchvision costs ~2.5 s

    if name in GEOMETRIC:
        return _torchvision_geometric(img, name, m, TF.InterpolationMode(interpolation))
    if name == "Identity":
        return img
    if name == "Brightness":
        return TF.adjust_brightness(img, 1.0 + m)
    if name == "Color":
        return TF.adjust_saturation(img, 1.0 + m)
    if name == "Contrast":
        return TF.adjust_contrast(img, 1.0 + m)
    if name == "Sharpness":
        return TF.adjust_sharpness(img, 1.0 + m)
    if name == "Posterize":
        return TF.posterize(img, int(m))
    if name == "Solarize":
        return TF.solarize(img, 255.0 * m)
    if name == "AutoContrast":
        return TF.autocontrast(img)
    assert name == "Equalize"
    return TF.equalize(img)


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def _torchvision_geometric(img: torch.Tensor, name: str, m: float, mode) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    if name == "ShearX":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[math.degrees(math.atan(m)), 0.0], interpolation=mode, center=[0, 0])
    if name == "ShearY":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[0.0, math.degrees(math.atan(m))], interpolation=mode, center=[0, 0])
    if name == "TranslateX":
        return TF.affine(img, angle=0.0, translate=[int(m), 0], scale=1.0, shear=[0.0, 0.0], interpolation=mode)
    if name == "TranslateY":
        return TF.affine(img, angle=0.0, translate=[0, int(m)], scale=1.0, shear=[0.0, 0.0], interpolation=mode)
    assert name == "Rotate"
    return TF.rotate(img, angle=m, interpolation=mode)


def _test_images(c: int, n: int = 3, h: int = 20, w: int = 24, seed: int = 0) -> torch.Tensor:
    """Random uint8 images, one of low contrast (60..123) so AutoContrast and Equalize have work to do,
    one dark in its first channel, so that a channel's mean is not the grey image's."""
    x = torch.randint(0, 256, (n, c, h, w), generator=_gen(seed), dtype=torch.uint8)
    x[1] = x[1] // 4 + 60
    x[2, 0] //= 3
    return x


def _assert_close_to_torchvision(ours: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    # Interpolation / float-rounding tolerance: a few pixels may land on the other side of a rounding
    # boundary (nearest-neighbour ties, truncation to uint8); on this CPU the results are identical.
    diff = (ours.int() - expected.int()).abs()
    assert ours.dtype == expected.dtype and ours.shape == expected.shape, what
    assert (diff > 0).float().mean().item() <= 2e-3, what
    if diff.max() > 1:  # a geometric tie moves a pixel to its neighbour, whose value may differ a lot
        assert (diff > 1).float().mean().item() <= 2e-3, what


@pytest.mark.slow  # torchvision's import alone (~2.5 s) is a tenth of the fast suite
@pytest.mark.parametrize("c", [3, 1])
@pytest.mark.parametrize("name", OPS)
def test_each_op_matches_torchvision_single_image_op(name: str, c: int) -> None:
    table, signed = magnitude_table()
    k = OPS.index(name)
    x = _test_images(c)
    for b in (0, 7, 18, 30):
        for sign in (1, -1) if signed[k] else (1,):
            m = sign * float(table[k, b])
            ours = apply(x, torch.full((len(x),), k), torch.full((len(x),), m))
            expected = torch.stack([_torchvision_op(img, name, m) for img in x])
            _assert_close_to_torchvision(ours, expected, f"{name} C={c} bin {b} m={m}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_ops_match_torchvision_with_bilinear_interpolation(name: str, dtype: torch.dtype) -> None:
    # uint8: torchvision rounds the interpolated values; float (torchvision's 0..1 scale, ours 0..255): no rounding.
    table, _ = magnitude_table()
    k = OPS.index(name)
    x = _test_images(3)
    for m in (float(table[k, 13]), -float(table[k, 29])):
        ours = apply(x if dtype == torch.uint8 else x.float(), torch.full((3,), k), torch.full((3,), m), "bilinear")
        if dtype == torch.uint8:
            expected = torch.stack([_torchvision_op(img, name, m, "bilinear") for img in x])
            _assert_close_to_torchvision(ours, expected, f"{name} m={m}")
        else:
            expected = torch.stack([_torchvision_op(img.float() / 255, name, m, "bilinear") * 255 for img in x])
            assert torch.allclose(ours, expected, atol=1e-3), f"{name} m={m}"


def test_grey_images_keep_their_colour() -> None:
    x = _test_images(1)
    k = OPS.index("Color")
    assert torch.equal(apply(x, torch.full((3,), k), torch.full((3,), -0.99)), x)


def test_magnitude_table_by_hand() -> None:
    table, signed = magnitude_table()
    row = {name: table[OPS.index(name)] for name in OPS}
    assert row["Rotate"][30].item() == pytest.approx(135.0) and row["Rotate"][1].item() == pytest.approx(4.5)
    assert row["ShearX"][15].item() == pytest.approx(0.495)  # 0.99 * 15 / 30
    assert row["TranslateY"][30].item() == pytest.approx(32.0)
    # Posterize 8 - b / 5 rounded: b = 0 -> 8, 2 -> round(7.6) = 8, 3 -> round(7.4) = 7, 30 -> 2.
    assert [row["Posterize"][b].item() for b in (0, 2, 3, 30)] == [8, 8, 7, 2]
    assert row["Solarize"][0].item() == 1.0 and row["Solarize"][30].item() == 0.0
    assert row["Brightness"][30].item() == pytest.approx(0.99)
    assert row["Identity"].abs().sum() == 0 and row["Equalize"].abs().sum() == 0
    assert [OPS[k] for k in signed.nonzero().flatten()] == ["ShearX", "ShearY", "TranslateX", "TranslateY",
                                                           "Rotate", "Brightness", "Color", "Contrast", "Sharpness"]


def test_draws_are_uniform_over_ops_bins_and_signs() -> None:
    n = 14 * 31 * 40
    op, bins, magnitude = draw(n, _gen(11))
    op_counts = torch.bincount(op, minlength=len(OPS)).numpy()
    bin_counts = torch.bincount(bins, minlength=31).numpy()
    assert len(op_counts) == len(OPS) and len(bin_counts) == 31
    # Chi-square against uniform at the 0.1 % level (a fixed seed, so the test is deterministic).
    assert stats.chisquare(op_counts).pvalue > 1e-3
    assert stats.chisquare(bin_counts).pvalue > 1e-3
    table, signed = magnitude_table()
    assert torch.equal(magnitude.abs(), table[op, bins])
    is_signed, nonzero = signed[op], magnitude != 0
    negative = (magnitude[is_signed & nonzero] < 0).float().mean().item()
    assert negative == pytest.approx(0.5, abs=0.02)
    assert (magnitude[~is_signed] >= 0).all()


def test_every_image_gets_its_own_drawn_op() -> None:
    # The batch result, image by image, equals the op this image drew applied to it alone: one op per
    # image, put back at the right place after the batch is sorted by op (each op against torchvision's: above).
    for c in (3, 1):
        x = torch.randint(0, 256, (60, c, 16, 16), generator=_gen(c), dtype=torch.uint8)
        op, _, magnitude = draw(60, _gen(7))
        ours = apply(x, op, magnitude)
        alone = torch.cat([apply(x[i:i + 1], op[i:i + 1], magnitude[i:i + 1]) for i in range(len(x))])
        assert torch.equal(ours, alone), f"C={c}"
        assert len(set(op.tolist())) == len(OPS)
        assert not torch.equal(ours, x)


def test_same_seed_same_batch() -> None:
    x = torch.randint(0, 256, (32, 3, 16, 16), generator=_gen(0), dtype=torch.uint8)
    first, second = trivial_augment_wide(x, _gen(9)), trivial_augment_wide(x, _gen(9))
    assert torch.equal(first, second)
    assert not torch.equal(first, trivial_augment_wide(x, _gen(10)))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("c", [3, 1])
def test_every_op_keeps_dtype_shape_and_range(c: int, dtype: torch.dtype, interpolation: str) -> None:
    table, signed = magnitude_table()
    x = _test_images(c, n=4, h=12, w=10)
    if dtype.is_floating_point:
        x = x.float() + torch.rand(x.shape, generator=_gen(1)) * 0.99  # off-integer values in [0, 255)
    extremes = [(k, s * float(table[k, b])) for k in range(len(OPS)) for b in (0, 30) for s in (1, -1)]
    op = torch.tensor([k for k, _ in extremes]).repeat_interleave(4)
    magnitude = torch.tensor([m for _, m in extremes]).repeat_interleave(4)
    out = apply(x.repeat(len(extremes), 1, 1, 1), op, magnitude, interpolation)
    assert out.dtype == dtype and out.shape == (4 * len(extremes), c, 12, 10)
    assert out.min() >= 0 and out.max() <= 255


def test_float_input_agrees_with_uint8_input() -> None:
    # On integer-valued float images the ops give the uint8 results before the uint8 cast truncates,
    # except that for uint8 Color and Contrast floor the grey image and Sharpness rounds the blur
    # (as torchvision): those may then differ by one level.
    x = _test_images(3)
    op, _, magnitude = draw(3 * 200, _gen(4))
    batch = x.repeat(200, 1, 1, 1)
    as_uint8, as_float = apply(batch, op, magnitude), apply(batch.float(), op, magnitude)
    assert as_float.dtype == torch.float32
    diff = (as_float.floor() - as_uint8.float()).abs()
    rounded = torch.isin(op, torch.tensor([OPS.index(name) for name in ("Color", "Contrast", "Sharpness")]))
    assert diff[~rounded].max() == 0
    assert diff[rounded].max() <= 1


# --------------------------------------------------------------------------- EMA

def _net(weight: list[float], bias: float) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([weight]))
        net[0].bias.fill_(bias)
    return net


def test_ema_two_updates_by_hand() -> None:
    model = _net([1.0, 2.0], 0.5)
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():  # step 1: the model moved to w = (3, -2), b = 1.5, running mean 1
        model[0].weight.copy_(torch.tensor([[3.0, -2.0]]))
        model[0].bias.fill_(1.5)
        model[1].running_mean.fill_(1.0)
        model[1].num_batches_tracked.fill_(7)
    assert ema.step(model)
    # 0.9 * 1 + 0.1 * 3 = 1.2; 0.9 * 2 + 0.1 * (-2) = 1.6; 0.9 * 0.5 + 0.1 * 1.5 = 0.6; mean 0.9 * 0 + 0.1 = 0.1
    assert torch.allclose(ema.module[0].weight, torch.tensor([[1.2, 1.6]]))
    assert ema.module[0].bias.item() == pytest.approx(0.6)
    assert ema.module[1].running_mean.item() == pytest.approx(0.1)
    assert ema.module[1].num_batches_tracked.item() == 7  # integer buffers are copied
    with torch.no_grad():  # step 2: w = (0, 0), b = -1.5
        model[0].weight.zero_()
        model[0].bias.fill_(-1.5)
    ema.step(model)
    # 0.9 * 1.2 = 1.08; 0.9 * 1.6 = 1.44; 0.9 * 0.6 + 0.1 * (-1.5) = 0.39; mean 0.9 * 0.1 + 0.1 * 1 = 0.19
    assert torch.allclose(ema.module[0].weight, torch.tensor([[1.08, 1.44]]))
    assert ema.module[0].bias.item() == pytest.approx(0.39)
    assert ema.module[1].running_mean.item() == pytest.approx(0.19)
    assert torch.equal(model[0].weight, torch.zeros(1, 2))  # the model itself is untouched


def test_ema_updates_every_nth_step_and_can_copy_buffers() -> None:
    model = _net([1.0, 1.0], 0.0)
    ema = ModelEMA(model, decay=0.5, every=2, average_buffers=False)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
        model[1].running_var.fill_(4.0)
    assert not ema.step(model)
    assert torch.equal(ema.module[0].weight, torch.ones(1, 2)) and ema.module[1].running_var.item() == 1.0
    assert ema.step(model)
    assert torch.allclose(ema.module[0].weight, torch.full((1, 2), 2.0))  # 0.5 * 1 + 0.5 * 3
    assert ema.module[1].running_var.item() == 4.0  # copied, not averaged


def test_ema_copy_is_frozen_in_eval_mode_and_restorable() -> None:
    model = _net([1.0, 2.0], 0.5).train()
    ema = ModelEMA(model, decay=0.9)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters()) and model.training
    ema.step(model)
    restored = ModelEMA(_net([0.0, 0.0], 0.0))
    restored.load_state_dict(ema.state_dict())
    assert restored.steps == 1 and torch.equal(restored.module[0].weight, ema.module[0].weight)


def test_adjusted_decay_by_hand() -> None:
    # torchvision reference: 1 - min(1, (1 - 0.99998) * 1 * 128 * 32 / 600) = 1 - 2e-5 * 6.8267 = 0.99986347
    assert adjusted_decay(0.99998, batch_size=128, every=32, epochs=600) == pytest.approx(0.99986347, abs=1e-8)
    assert adjusted_decay(0.9, batch_size=128, every=32, epochs=1) == 0.0
