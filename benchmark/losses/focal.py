"""Focal loss (Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from benchmark.losses.base import Loss


def focal_terms(output: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample -(1 - p_y)^gamma log p_y with p = softmax(output), shape (N,).

    1 - p_y is computed as -expm1(log p_y), exact for confident predictions, and floored at the
    smallest normal float so that gamma < 1 cannot produce an infinite gradient at p_y = 1.
    """
    log_p = F.log_softmax(output.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    one_minus_p = (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny)
    return -one_minus_p.pow(gamma) * log_p


def check_class_weights(weights: Sequence[float] | None, num_classes: int, what: str) -> torch.Tensor:
    """Per-class weights as a float32 tensor (all ones for None); ValueError on a wrong length or sign."""
    if weights is None:
        return torch.ones(num_classes)
    tensor = torch.as_tensor(weights, dtype=torch.float64).flatten()
    if tensor.numel() != num_classes:
        raise ValueError(f"{what} has {tensor.numel()} entries, expected one per class ({num_classes})")
    if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
        raise ValueError(f"{what} must be finite and non-negative")
    return tensor.float()


class FocalLoss(Loss):
    """L = mean over the batch of -w_y (1 - p_y)^gamma log p_y, p = softmax(f(x)).

    The softmax (multi-class) form of the focal loss of Lin et al. (2017, Eq. 5 with the
    alpha-balancing weight generalised to per-class weights w_c; the paper states it for the
    sigmoid and notes the softmax form works as well). gamma = 0 and w = 1 give softmax
    cross-entropy; the schema's default gamma = 2 is the paper's. Predict argmax f(x).
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        gamma: float,
        class_weights: Sequence[float] | None,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        weights = check_class_weights(class_weights, num_classes, "class_weights")
        self.register_buffer("class_weights", weights)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.class_weights[target] * focal_terms(output, target, self.gamma)).mean()
