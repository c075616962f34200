"""Crops of whole images of varying shape in a shared canvas (benchmark/augment.py `Regions`,
benchmark/train/data.py), checked against the official `compose_batch` by hand: a training crop is a
window of the image in its own orientation at any position inside it, the test crop the window at
((height - crop) // 2, (width - crop) // 2); a portrait image, stored transposed, comes back upright."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.augment import Regions, augment, center_crop, eval_view, random_crop
from benchmark.data.errors import DataError
from benchmark.data.prepared import Prepared
from benchmark.train.data import DeviceData

CROP = 4
# (height, width) of each image in its own orientation: landscape, portrait (stored transposed), square
SIZES = [(6, 10), (9, 6), (6, 6)]


def _images(seed: int = 0) -> list[torch.Tensor]:
    """Each image (2, height, width) with distinct pixel values, so a window identifies its position."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(2 * h * w, generator=gen).view(2, h, w) for h, w in SIZES]


def _canvas(images: list[torch.Tensor], copies: int = 1) -> tuple[torch.Tensor, Regions]:
    """The images top-left in a (2, 6, 10) canvas of -1s, portraits transposed, `copies` times over."""
    canvas = torch.full((len(images), 2, 6, 10), -1, dtype=torch.int64)
    for i, image in enumerate(images):
        stored = image.transpose(1, 2) if image.shape[1] > image.shape[2] else image
        canvas[i, :, :stored.shape[1], :stored.shape[2]] = stored
    sizes = torch.tensor(SIZES)
    regions = Regions(sizes.min(1).values, sizes.max(1).values, sizes[:, 0] > sizes[:, 1])
    index = torch.arange(len(images)).repeat(copies)
    return canvas[index], regions[index]


def _position(image: torch.Tensor, crop: torch.Tensor) -> tuple[int, int]:
    """(top, left) of the window of `image` (own orientation) that equals `crop`; AssertionError if none."""
    _, h, w = image.shape
    found = [(t, s) for t in range(h - CROP + 1) for s in range(w - CROP + 1)
             if torch.equal(image[:, t:t + CROP, s:s + CROP], crop)]
    assert len(found) == 1, "the crop is not a window of the image in its own orientation"
    return found[0]


def test_random_crops_lie_inside_each_image_upright_and_cover_every_position():
    images = _images()
    canvas, regions = _canvas(images, copies=150)
    out = random_crop(canvas, CROP, torch.Generator().manual_seed(0), regions)
    assert out.shape == (450, 2, CROP, CROP) and (out >= 0).all()  # never a padding pixel
    seen = {i: set() for i in range(len(images))}
    for k in range(out.shape[0]):
        seen[k % 3].add(_position(images[k % 3], out[k]))
    for i, (h, w) in enumerate(SIZES):  # every position of the official randint(size - crop + 1) occurs
        assert seen[i] == {(t, s) for t in range(h - CROP + 1) for s in range(w - CROP + 1)}, SIZES[i]


def test_centre_crop_is_the_official_centre_of_each_image():
    images = _images(1)
    canvas, regions = _canvas(images)
    out = center_crop(canvas, CROP, regions)
    for i, (h, w) in enumerate(SIZES):
        top, left = (h - CROP) // 2, (w - CROP) // 2  # compose_batch without randcrop
        assert torch.equal(out[i], images[i][:, top:top + CROP, left:left + CROP]), SIZES[i]
    assert torch.equal(eval_view(canvas, {"crop": CROP}, regions), out.float())


def test_augment_with_regions_crops_then_flips_in_the_images_orientation():
    images = _images(2)
    canvas, regions = _canvas(images, copies=40)
    out = augment(canvas.float(), {"crop": CROP, "hflip": True, "max_shift": 0, "shift_fill": "zero"},
                  torch.Generator().manual_seed(3), regions=regions)
    flips = 0
    for k in range(out.shape[0]):
        image = images[k % 3].float()
        try:
            _position(image, out[k])
        except AssertionError:
            _position(image, out[k].flip(2))  # else it must be a flipped window
            flips += 1
    assert 20 < flips < 100


def _device_data(aug_sizes=SIZES) -> tuple[DeviceData, list[torch.Tensor]]:
    """DeviceData over a prepared canvas (uint8, N H W C) with identity normalisation."""
    images = [image % 251 for image in _images(4)]  # uint8 values, still distinct within each image
    canvas, _ = _canvas(images)
    canvas = canvas.clamp_min(0).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    meta = {"name": "toy", "mean": [0.0, 0.0], "std": [1 / 255, 1 / 255], "classes": ["a", "b", "c"]}
    prepared = Prepared(canvas, np.arange(3), np.arange(3), np.arange(0), meta, np.array(aug_sizes))
    return DeviceData(prepared, torch.device("cpu")), images


def test_device_data_batches_crop_within_each_images_region():
    data, images = _device_data()
    aug = {"crop": CROP, "hflip": False, "max_shift": 0, "shift_fill": "zero"}
    x, y = data.train_batch(torch.tensor([1, 0, 2, 1]), aug, torch.Generator().manual_seed(0),
                            torch.contiguous_format)
    assert x.shape == (4, 2, CROP, CROP) and y.tolist() == [1, 0, 2, 1]
    for k, i in enumerate([1, 0, 2, 1]):
        _position(images[i].float(), x[k])
    (view,) = list(data.eval_batches(np.array([0, 1, 2]), aug, 8, torch.contiguous_format))
    for i, (h, w) in enumerate(SIZES):
        top, left = (h - CROP) // 2, (w - CROP) // 2
        assert torch.equal(view[i], images[i][:, top:top + CROP, left:left + CROP].float())


def test_device_data_needs_a_crop_that_fits_every_image():
    data, _ = _device_data()
    idx, gen = torch.tensor([0]), torch.Generator()
    with pytest.raises(DataError, match=r"dataset toy is stored as whole images.*augment\.crop"):
        data.train_batch(idx, {"hflip": False, "max_shift": 0, "shift_fill": "zero"}, gen, torch.contiguous_format)
    with pytest.raises(DataError, match="crop 7 is larger than the shortest side 6 of dataset toy"):
        list(data.eval_batches(np.array([0]), {"crop": 7}, 8, torch.contiguous_format))
