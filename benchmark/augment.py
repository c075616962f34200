"""Augmentations as batched tensor ops on the device: one call per batch, no per-sample Python."""

from __future__ import annotations

import torch


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of (N, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels per axis, filling with zeros.

    Pads once and gathers every image's window with one advanced-indexing call.
    """
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def augment(x: torch.Tensor, settings: dict, generator: torch.Generator) -> torch.Tensor:
    """Apply the augmentations named in `settings` (keys: hflip, max_shift)."""
    if settings.get("hflip"):
        x = random_hflip(x, generator)
    return random_shift(x, int(settings.get("max_shift", 0)), generator)
