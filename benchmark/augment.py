"""Augmentations as batched tensor ops on the device: one call per batch, no per-sample Python.

They work on pixel values (uint8 or float in 0..255, before normalisation), in the order of the
paper's pipeline for photos: random crop (448 anywhere in the whole image, shorter side 512),
horizontal flip, random erasing; for CIFAR: flip and shifts. `augment` applies what a dataset's
`augment` settings name; `eval_view` is the deterministic test-time view (the centre crop).

Images of varying shape share a canvas (benchmark/data/images.py, crop "whole"): `Regions` says
where each image of a batch lies in it. The crops then follow the official `compose_batch`
(github.com/cvjena/semantic-embeddings, datasets/common.py): a training crop's offset is uniform
over the positions inside the image's own region, the test crop is its centre ((size - crop) // 2
per axis); a transposed (portrait) image's crop is transposed back. The official code pads an
image smaller than the crop (reflect); here every image's shorter side is at least the crop (the
trainer checks), so no padding is ever needed.

Differences from the official Keras code, kept on purpose: erasing is applied to the crop (the
official code erases the whole resized image, then crops), and shifts are whole pixels (Keras
interpolates fractional shifts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ERASE_ATTEMPTS = 10  # random erasing: candidate rectangles per image; the first that fits is used


@dataclass(frozen=True)
class Regions:
    """Where each image of a batch lies in its canvas: `rows` x `cols` pixels from the top-left corner,
    stored transposed where `transposed` (all (N,) tensors on the batch's device)."""

    rows: torch.Tensor
    cols: torch.Tensor
    transposed: torch.Tensor

    def __getitem__(self, idx: torch.Tensor) -> Regions:
        return Regions(self.rows[idx], self.cols[idx], self.transposed[idx])


def _window(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The (height, width) window at (top[i], left[i]) of every image i, gathered in one indexing call."""
    n, c = x.shape[:2]
    rows = (top[:, None] + torch.arange(height, device=x.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(width, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, chan, rows, cols]


def _check_crop(x: torch.Tensor, size: int) -> None:
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"augment crop {size} is larger than the stored images ({h} x {w}); "
                         f"lower dataset_settings.<dataset>.augment.crop or prepare the data at a larger resolution")


def _upright(crops: torch.Tensor, regions: Regions | None) -> torch.Tensor:
    """Square crops of transposed (portrait) images transposed back to their own orientation."""
    if regions is None:
        return crops
    return torch.where(regions.transposed[:, None, None, None], crops.transpose(2, 3), crops)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator,
                regions: Regions | None = None) -> torch.Tensor:
    """A random size x size crop of each image of (N, C, H, W), every position inside the image equally
    likely (the whole array, or the image's own region of it with `regions`)."""
    _check_crop(x, size)
    n, _, h, w = x.shape
    rows = regions.rows if regions is not None else torch.full((n,), h, device=x.device)
    cols = regions.cols if regions is not None else torch.full((n,), w, device=x.device)
    # floor(u * k) is uniform over 0..k-1; a per-image k, so not randint (whose bound is one number)
    top = (torch.rand(n, device=x.device, generator=generator) * (rows - size + 1)).long()
    left = (torch.rand(n, device=x.device, generator=generator) * (cols - size + 1)).long()
    return _upright(_window(x, top, left, size, size), regions)


def center_crop(x: torch.Tensor, size: int, regions: Regions | None = None) -> torch.Tensor:
    """The central size x size crop (the test-time view: 448 of the whole image, shorter side 512)."""
    _check_crop(x, size)
    h, w = x.shape[-2:]
    if regions is None:
        top, left = (h - size) // 2, (w - size) // 2
        return x[..., top:top + size, left:left + size]
    return _upright(_window(x, (regions.rows - size) // 2, (regions.cols - size) // 2, size, size), regions)


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of (N, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator, fill: str = "zero") -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels per axis.

    Uncovered pixels are 0 (fill "zero") or repeat the nearest edge pixel (fill "nearest", Keras'
    default, float input only). Pads once and gathers every image's window with one indexing call.
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    mode = "replicate" if fill == "nearest" else "constant"
    padded = F.pad(x, (max_shift,) * 4, mode=mode)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), device=x.device, generator=generator)
    return _window(padded, dy, dx, h, w)


def random_erasing(
    x: torch.Tensor,
    generator: torch.Generator,
    p: float,
    area: tuple[float, float],
    aspect: tuple[float, float],
) -> torch.Tensor:
    """With probability p per image, replace a random rectangle by uniform noise in [0, 255)
    (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020; the paper's ranges are the schema's
    defaults: area 0.02-0.3 of the image, aspect 0.3-3.33).

    The rectangle's area is a uniform fraction of the image area in `area`, its height / width
    uniform in `aspect` (sides rounded to whole pixels), its position uniform over the places it
    fits. Of ERASE_ATTEMPTS candidates per image the first that fits is used (none fitting: the
    image is left alone); with the paper's ranges the first always fits.
    """
    n, c, h, w = x.shape

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, device=x.device, generator=generator)

    apply = uniform(n) < p
    target = (area[0] + (area[1] - area[0]) * uniform(n, ERASE_ATTEMPTS)) * (h * w)
    ratio = aspect[0] + (aspect[1] - aspect[0]) * uniform(n, ERASE_ATTEMPTS)
    heights = torch.sqrt(target * ratio).round().long()
    widths = torch.sqrt(target / ratio).round().long()
    fits = (heights >= 1) & (widths >= 1) & (heights <= h) & (widths <= w)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first fitting candidate (0 if none)
    apply &= fits.gather(1, first).squeeze(1)
    eh, ew = heights.gather(1, first).squeeze(1), widths.gather(1, first).squeeze(1)
    top = (uniform(n) * (h - eh + 1)).long()
    left = (uniform(n) * (w - ew + 1)).long()
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = apply[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]
    noise = (uniform(n, c, h, w) * 255.0).to(x.dtype)
    return torch.where(mask[:, None], noise, x)


def augment(x: torch.Tensor, settings: dict, generator: torch.Generator, recipe=None,
            regions: Regions | None = None) -> torch.Tensor:
    """The training view of a batch of pixel values, as float (with `recipe`, benchmark/recipe/pipeline.py,
    its TrivialAugment after the crop and its random erasing last).

    settings (a dataset's `augment`, defaults filled by the schema): crop (size, optional), hflip,
    max_shift and shift_fill, erase ({p, area, aspect}, optional). Cropping comes first, on the stored
    dtype, so the float copy is small; with `regions` (images of varying shape) it must be set.
    """
    if settings.get("crop"):
        x = random_crop(x, int(settings["crop"]), generator, regions)
    if recipe is not None:
        x = recipe.pixels(x)
    x = x.float()
    if settings["hflip"]:
        x = random_hflip(x, generator)
    x = random_shift(x, int(settings["max_shift"]), generator, settings["shift_fill"])
    erase = settings.get("erase")
    if erase and erase["p"] > 0:
        x = random_erasing(x, generator, erase["p"], tuple(erase["area"]), tuple(erase["aspect"]))
    return recipe.erase(x) if recipe is not None else x


def eval_view(x: torch.Tensor, settings: dict, regions: Regions | None = None) -> torch.Tensor:
    """The test-time view of a batch, as float: the centre crop when training crops, else the image."""
    if settings.get("crop"):
        x = center_crop(x, int(settings["crop"]), regions)
    return x.float()
