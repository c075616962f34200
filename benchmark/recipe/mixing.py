"""Mixup and CutMix on a batch, one mixing weight per batch, every draw from an explicit generator.

The trainer computes the loss from one forward pass as lam L(out, y_a) + (1 - lam) L(out, y_b);
`mixed_targets` gives the equivalent soft targets for losses that take them. lam is returned as
a 0-d float32 tensor on the batch's device, so nothing waits for the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_beta(
    a: float, b: float, generator: torch.Generator, shape: tuple[int, ...] = (), device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Beta(a, b) draws as float32, from two gamma draws of `generator`: X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b).

    torch.distributions takes no generator, so the gamma draws come from torch._standard_gamma
    (the sampler torch.distributions.Gamma itself uses), which does. They are drawn in float64 so
    that for small a, b both rarely underflow to 0; if they do, the draw is 0.
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"Beta parameters must be positive, got ({a}, {b})")
    x = torch._standard_gamma(torch.full(shape, float(a), dtype=torch.float64, device=device), generator=generator)
    y = torch._standard_gamma(torch.full(shape, float(b), dtype=torch.float64, device=device), generator=generator)
    return (x / (x + y).clamp_min(torch.finfo(torch.float64).tiny)).float()


def mixup(
    x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al., ICLR 2018, arXiv 1710.09412): x~ = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha).

    One lam per batch and a uniform random permutation perm, as the official code. Returns
    (x~ as float, y_a = y, y_b = y[perm], lam). alpha <= 0 turns mixing off (lam = 1), as there.
    """
    perm = torch.randperm(x.shape[0], generator=generator, device=x.device)
    lam = sample_beta(alpha, alpha, generator, device=x.device) if alpha > 0 else torch.ones((), device=x.device)
    x = x.float()
    mixed = lam * x + (1 - lam) * x[perm]
    return mixed, y, y[perm], lam


def cutmix(
    x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, p: float = 0.5, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al., ICCV 2019, arXiv 1905.04899): with probability p, paste a box of x[perm] into x.

    lam0 ~ Beta(alpha, alpha) (alpha = 1: uniform); box sides h = floor(H sqrt(1 - lam0)),
    w = floor(W sqrt(1 - lam0)) around a centre (cy, cx) uniform over the pixels; the box is
    rows [cy - h // 2, cy + h // 2) x columns [cx - w // 2, cx + w // 2), clipped to the image
    (the official code's rand_bbox). lam = 1 - box area / (H W), the share of the original image
    left. Without the paste (probability 1 - p) x is returned unchanged with lam = 1. The same
    draws are made either way, so the generator's stream does not depend on the outcome.
    Returns (x~ in x's dtype, y_a = y, y_b = y[perm], lam).
    """
    n, _, height, width = x.shape
    device = x.device
    perm = torch.randperm(n, generator=generator, device=device)
    paste = torch.rand((), generator=generator, device=device) < p
    side = torch.sqrt(1 - sample_beta(alpha, alpha, generator, device=device))
    cut_h = torch.where(paste, torch.floor(height * side), 0).long()
    cut_w = torch.where(paste, torch.floor(width * side), 0).long()
    cy = torch.randint(height, (), generator=generator, device=device)
    cx = torch.randint(width, (), generator=generator, device=device)
    top, bottom = (cy - cut_h // 2).clamp(0, height), (cy + cut_h // 2).clamp(0, height)
    left, right = (cx - cut_w // 2).clamp(0, width), (cx + cut_w // 2).clamp(0, width)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    box = ((rows >= top) & (rows < bottom))[:, None] & ((cols >= left) & (cols < right))[None, :]
    mixed = torch.where(box, x[perm], x)
    lam = 1 - ((bottom - top) * (right - left)).float() / (height * width)
    return mixed, y, y[perm], lam


def mixed_targets(y_a: torch.Tensor, y_b: torch.Tensor, lam: torch.Tensor | float, num_classes: int) -> torch.Tensor:
    """Soft targets (N, num_classes): lam onehot(y_a) + (1 - lam) onehot(y_b); each row sums to 1."""
    a = F.one_hot(y_a, num_classes).float()
    b = F.one_hot(y_b, num_classes).float()
    return lam * a + (1 - lam) * b
