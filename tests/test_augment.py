"""Batched augmentations (crop, flip, shift, erasing) and the evaluation metrics, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.augment import (
    augment,
    center_crop,
    eval_view,
    random_crop,
    random_erasing,
    random_hflip,
    random_shift,
)
from benchmark.evaluate import accuracy, balanced_accuracy, predict
from benchmark.losses.cosine import CosineLoss
from benchmark.losses.softmax import SoftmaxCrossEntropy
from benchmark.methods import Method

NO_AUGMENT = {"hflip": False, "max_shift": 0, "shift_fill": "zero"}  # the schema's defaults
ERASE = {"area": (0.02, 0.3), "aspect": (0.3, 3.33)}  # the schema's defaults (Zhong et al.)


def _shift_by_hand(image: np.ndarray, sy: int, sx: int) -> np.ndarray:
    """Move the content of (C, H, W) down by sy and right by sx pixels, filling with zeros."""
    _, h, w = image.shape
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            if 0 <= r - sy < h and 0 <= c - sx < w:
                out[:, r, c] = image[:, r - sy, c - sx]
    return out


def _marked_batch(n: int, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    """Channel 0: a single 1 at the centre (the marker); channel 1: random content."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 2, h, w)
    x[:, 0, h // 2, w // 2] = 1.0
    x[:, 1] = torch.rand(n, h, w, generator=gen) + 0.5  # strictly positive, so zeros mean padding
    return x


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_is_a_shifted_copy_of_each_input(max_shift):
    x = _marked_batch(200)
    out = random_shift(x, max_shift, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(x.shape[0]):
        marker = torch.nonzero(out[i, 0])
        assert marker.shape == (1, 2), "the one-hot pixel must survive as exactly one pixel"
        assert out[i, 0].sum().item() == 1.0
        sy, sx = (int(v) - 4 for v in marker[0])
        assert abs(sy) <= max_shift and abs(sx) <= max_shift
        seen.add((sy, sx))
        np.testing.assert_array_equal(out[i].numpy(), _shift_by_hand(x[i].numpy(), sy, sx))
    # With 200 images every one of the (2m + 1)^2 shifts occurs.
    assert len(seen) == (2 * max_shift + 1) ** 2


def test_random_shift_corner_pixel_can_leave_the_image():
    x = torch.zeros(64, 1, 5, 5)
    x[:, 0, 0, 0] = 1.0
    out = random_shift(x, 1, torch.Generator().manual_seed(0))
    sums = out.sum(dim=(1, 2, 3))
    assert set(sums.tolist()) == {0.0, 1.0}  # shifted out (zero fill) or kept, never wrapped around
    assert out[:, 0, 4, :].sum() == 0 and out[:, 0, :, 4].sum() == 0


def test_random_shift_zero_is_identity():
    x = _marked_batch(5)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert torch.equal(random_shift(x, 0, gen), x)
    assert torch.equal(gen.get_state(), state)  # consumes no random numbers
    assert torch.equal(augment(x, NO_AUGMENT, gen), x)


def test_random_shift_deterministic_for_a_generator():
    x = _marked_batch(32)
    a = random_shift(x, 2, torch.Generator().manual_seed(5))
    b = random_shift(x, 2, torch.Generator().manual_seed(5))
    c = random_shift(x, 2, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # And independent of the global RNG.
    torch.manual_seed(123)
    d = random_shift(x, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, d)


def test_random_hflip_flips_about_half():
    x = _marked_batch(100)
    x[:, 0] = 0.0
    x[:, 0, 2, 1] = 1.0  # an off-centre marker: flipped it lands at column 8 - 1 - 1 = 6
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = 0
    for i in range(100):
        if out[i, 0, 2, 6] == 1.0:
            flipped += 1
            assert torch.equal(out[i], x[i].flip(2))
        else:
            assert torch.equal(out[i], x[i])
    assert 20 < flipped < 80


def test_augment_applies_flip_only_when_asked():
    x = _marked_batch(50)
    x[:, 0] = 0.0
    x[:, 0, 4, 1] = 1.0
    no_flip = augment(x, NO_AUGMENT, torch.Generator().manual_seed(0))
    assert torch.equal(no_flip, x)
    with_flip = augment(x, {**NO_AUGMENT, "hflip": True}, torch.Generator().manual_seed(0))
    assert not torch.equal(with_flip, x)


def _coordinate_batch(n: int, h: int, w: int) -> torch.Tensor:
    """(n, 2, h, w) int64: channel 0 holds the row, channel 1 the column of each pixel."""
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    return torch.stack([rows, cols]).expand(n, 2, h, w).clone()


def test_random_crop_is_a_window_of_each_image_and_covers_every_position():
    x = _coordinate_batch(400, 12, 10).to(torch.uint8)
    out = random_crop(x, 8, torch.Generator().manual_seed(0))
    assert out.shape == (400, 2, 8, 8) and out.dtype == torch.uint8  # crops the stored uint8, before float
    positions = set()
    for i in range(400):
        top, left = int(out[i, 0, 0, 0]), int(out[i, 1, 0, 0])
        assert torch.equal(out[i], x[i, :, top:top + 8, left:left + 8])
        positions.add((top, left))
    assert positions == {(t, s) for t in range(12 - 8 + 1) for s in range(10 - 8 + 1)}


def test_random_crop_deterministic_per_generator_and_checks_size():
    x = _coordinate_batch(16, 20, 20)
    a = random_crop(x, 15, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_crop(x, 15, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, random_crop(x, 15, torch.Generator().manual_seed(4)))
    assert torch.equal(random_crop(x, 20, torch.Generator().manual_seed(0)), x)  # full size: the image
    with pytest.raises(ValueError, match="crop 21 is larger than the stored images"):
        random_crop(x, 21, torch.Generator())


def test_center_crop_448_of_512():
    x = _coordinate_batch(2, 512, 512)
    out = center_crop(x, 448)
    assert out.shape == (2, 2, 448, 448)
    assert (int(out[0, 0, 0, 0]), int(out[0, 1, 0, 0])) == (32, 32)
    assert (int(out[1, 0, -1, -1]), int(out[1, 1, -1, -1])) == (479, 479)
    odd = center_crop(_coordinate_batch(1, 9, 7), 4)
    assert (int(odd[0, 0, 0, 0]), int(odd[0, 1, 0, 0])) == (2, 1)


def _erased_boxes(out: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """(top, left, height, width) of the pixels no longer -1 in each image, checked to be a filled box."""
    boxes = []
    for img in out:
        changed = (img != -1).any(dim=0)
        if not changed.any():
            boxes.append(None)
            continue
        rows = torch.nonzero(changed.any(dim=1)).flatten()
        cols = torch.nonzero(changed.any(dim=0)).flatten()
        top, left = int(rows[0]), int(cols[0])
        height, width = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
        assert changed[top:top + height, left:left + width].all(), "the erased region is a rectangle"
        assert int(changed.sum()) == height * width
        boxes.append((top, left, height, width))
    return boxes


def test_random_erasing_rectangles_area_aspect_and_noise():
    h, w = 64, 48
    x = torch.full((600, 3, h, w), -1.0)
    out = random_erasing(x, torch.Generator().manual_seed(0), p=0.5, area=(0.02, 0.3), aspect=(0.3, 3.33))
    boxes = _erased_boxes(out)
    erased = [b for b in boxes if b is not None]
    assert 240 < len(erased) < 360  # p = 0.5 of 600
    for top, left, height, width in erased:
        assert top >= 0 and top + height <= h and left >= 0 and left + width <= w
        # Sides are rounded to whole pixels: allow half a pixel on each side.
        assert (height - 0.5) * (width - 0.5) <= 0.3 * h * w
        assert (height + 0.5) * (width + 0.5) >= 0.02 * h * w
        assert (height - 0.5) / (width + 0.5) <= 3.33 and (height + 0.5) / (width - 0.5) >= 0.3
    areas = [b[2] * b[3] / (h * w) for b in erased]
    assert min(areas) < 0.05 and max(areas) > 0.25  # the range is used, not one size
    noise = out[out != -1]
    assert noise.min() >= 0 and noise.max() < 255 and 100 < float(noise.mean()) < 155  # uniform in [0, 255)


def test_random_erasing_deterministic_per_generator_and_p_extremes():
    x = torch.full((32, 3, 16, 16), -1.0)
    a = random_erasing(x, torch.Generator().manual_seed(7), p=0.5, **ERASE)
    assert torch.equal(a, random_erasing(x, torch.Generator().manual_seed(7), p=0.5, **ERASE))
    assert not torch.equal(a, random_erasing(x, torch.Generator().manual_seed(8), p=0.5, **ERASE))
    assert torch.equal(random_erasing(x, torch.Generator().manual_seed(0), p=0.0, **ERASE), x)
    boxes = _erased_boxes(random_erasing(x, torch.Generator().manual_seed(0), p=1.0, **ERASE))
    assert all(b is not None for b in boxes)


def test_random_erasing_skips_images_where_no_candidate_fits():
    """An area range beyond what any rectangle in the image can have: nothing is erased."""
    x = torch.full((20, 1, 10, 10), -1.0)
    out = random_erasing(x, torch.Generator().manual_seed(0), p=1.0, area=(0.95, 0.99), aspect=(3.0, 3.3))
    assert torch.equal(out, x)


def test_random_shift_nearest_fill_repeats_the_edge():
    x = _coordinate_batch(64, 6, 6).float() + 1.0  # no zeros anywhere
    out = random_shift(x, 2, torch.Generator().manual_seed(0), fill="nearest")
    assert (out > 0).all()  # never zero-filled
    zero = random_shift(x, 2, torch.Generator().manual_seed(0), fill="zero")
    assert (zero == 0).any()
    same = out == zero  # both fills take the same shifts: they agree wherever the image is kept
    assert same.any()


def test_augment_photo_pipeline_shapes_dtype_and_determinism():
    """The paper's photo pipeline: uint8 512 store -> random 448 crop, flip, erasing -> float."""
    x = torch.randint(0, 256, (2, 3, 512, 512), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    settings = {**NO_AUGMENT, "crop": 448, "hflip": True, "erase": {"p": 0.5, **ERASE}}
    a = augment(x, settings, torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 448, 448) and a.dtype == torch.float32
    assert torch.equal(a, augment(x, settings, torch.Generator().manual_seed(1)))
    view = eval_view(x, settings)
    assert view.dtype == torch.float32 and torch.equal(view, x[:, :, 32:480, 32:480].float())
    assert torch.equal(eval_view(x, {**NO_AUGMENT, "hflip": True, "max_shift": 5}), x.float())


# --------------------------------------------------------------------------- evaluation metrics

def test_balanced_accuracy_by_hand():
    target = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 0, 1, 0, 2])
    # recalls: class 0 3/4, class 1 1/2, class 2 1/1; class 3 is absent from target and ignored.
    assert balanced_accuracy(pred, target, num_classes=4) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert accuracy(pred, target) == pytest.approx(5 / 7)
    # Predicting an absent class counts as wrong but adds no recall term.
    pred2 = np.array([3, 0, 0, 0, 1, 1, 2])
    assert balanced_accuracy(pred2, target, num_classes=4) == pytest.approx((0.75 + 1.0 + 1.0) / 3)
    assert balanced_accuracy(target, target, num_classes=3) == 1.0
    assert balanced_accuracy(np.zeros(7, dtype=int), target, num_classes=3) == pytest.approx(1 / 3)


def test_balanced_accuracy_differs_from_accuracy_on_imbalance():
    target = np.array([0] * 9 + [1])
    pred = np.zeros(10, dtype=int)
    assert accuracy(pred, target) == pytest.approx(0.9)
    assert balanced_accuracy(pred, target, num_classes=2) == pytest.approx(0.5)


def test_predict_uses_the_loss_scoring_rule():
    # Identity "model": the outputs are the given rows; with 2-D class embeddings the cosine rule
    # picks the embedding nearest in angle, not the largest coordinate.
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    method = Method(nn.Identity(), CosineLoss(num_classes=3, embed_dim=2, class_embeddings=emb))
    rows = torch.tensor([[0.1, 0.9], [-3.0, 1.0], [2.0, -1.0], [0.5, 0.6]])
    method.train()
    preds = predict(method, [rows[:2], rows[2:]])
    assert preds.tolist() == [1, 2, 0, 1]
    assert not method.training and not method.model.training and not method.loss.training
    softmax = Method(nn.Identity(), SoftmaxCrossEntropy(num_classes=2, embed_dim=2))
    assert predict(softmax, [rows]).tolist() == [1, 1, 0, 1]
