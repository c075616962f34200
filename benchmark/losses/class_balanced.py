"""Class-balanced loss (Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective
Number of Samples", CVPR 2019).

A class with n training samples has an effective number (1 - beta^n) / (1 - beta); its
samples are weighted by the inverse, w_c = (1 - beta) / (1 - beta^{n_c}), normalised so the C
weights sum to C. beta = 0 gives w = 1 (no re-weighting); beta -> 1 approaches inverse class
frequency. On a subset with the same number of images in every class all weights are 1, so the
loss equals its base loss there; it differs only on imbalanced training sets.

`class_counts` must be the per-class image counts of the training subset the cell actually
trains on (not of the full dataset); the trainer passes them (see `needs_class_counts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.losses.base import Loss
from benchmark.losses.focal import focal_terms

BASES = ("softmax", "focal", "sigmoid", "sigmoid_focal")


def class_balanced_weights(class_counts: Sequence[int], beta: float) -> np.ndarray:
    """w_c = (1 - beta) / (1 - beta^{n_c}), scaled to sum to C; float64 (C,)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError("class_counts must be a non-empty list with one count per class")
    if (counts < 1).any() or (counts != np.round(counts)).any():
        empty = np.flatnonzero(counts < 1).tolist()
        raise ValueError(f"class_counts must be positive integers; classes without samples: {empty[:10]}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"class-balanced beta must lie in [0, 1), got {beta}")
    # 1 - beta^n as -expm1(n log beta): no cancellation when beta^n is close to 1.
    effective = -np.expm1(counts * np.log(beta)) / (1.0 - beta) if beta > 0 else np.ones_like(counts)
    weights = 1.0 / effective
    return weights * (counts.size / weights.sum())


def sigmoid_terms(output: torch.Tensor, target: torch.Tensor, gamma: float = 0.0) -> torch.Tensor:
    """Per-sample sum over classes of the (focal) sigmoid cross-entropy, shape (N,).

    With z_t = z_c for the true class and -z_c otherwise, p_t = sigmoid(z_t) and each class adds
    -(1 - p_t)^gamma log p_t = exp(-gamma softplus(z_t)) softplus(-z_t) (stable for large |z|).
    """
    logits = output.float()
    sign = 2.0 * F.one_hot(target, logits.shape[1]).to(logits.dtype) - 1.0
    z_t = sign * logits
    terms = F.softplus(-z_t)
    if gamma:
        terms = torch.exp(-gamma * F.softplus(z_t)) * terms
    return terms.sum(dim=1)


class ClassBalancedLoss(Loss):
    """L = mean over the batch of w_y * base(f(x), y), w from `class_balanced_weights`.

    base: "softmax" = -log softmax(f(x))_y (Cui et al. Eq. 6); "focal" = softmax focal loss
    -(1 - p_y)^gamma log p_y (as `FocalLoss`); "sigmoid" = sum_c -log sigmoid(z_t) over all C
    classes (Eq. 5); "sigmoid_focal" = sum_c -(1 - p_t)^gamma log p_t, the focal form Cui et al.
    use (Eq. 7). The sigmoid forms sum over classes as the paper's equations do (a mean over
    classes would divide the loss, and the effective learning rate, by C). Predict argmax f(x).
    """

    needs_class_counts: ClassVar[bool] = True

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        class_counts: Sequence[int] | None = None,
        *,
        beta: float,
        base: str,
        gamma: float = 0.0,
    ) -> None:
        super().__init__()
        if class_counts is None:
            raise ValueError(
                "the class-balanced loss needs class_counts (images per class of the training subset); "
                "the trainer must pass them"
            )
        if len(class_counts) != num_classes:
            raise ValueError(f"class_counts has {len(class_counts)} entries, expected {num_classes}")
        if base not in BASES:
            raise ValueError(f"unknown class-balanced base loss {base!r}; known: {', '.join(BASES)}")
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.base = base
        self.beta = float(beta)
        self.gamma = float(gamma)
        weights = class_balanced_weights(class_counts, beta)
        self.register_buffer("class_weights", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.base == "softmax":
            terms = F.cross_entropy(output.float(), target, reduction="none")
        elif self.base == "focal":
            terms = focal_terms(output, target, self.gamma)
        elif self.base == "sigmoid":
            terms = sigmoid_terms(output, target)
        else:
            terms = sigmoid_terms(output, target, self.gamma)
        return (self.class_weights[target] * terms).mean()


class ClassBalancedSoftmax(ClassBalancedLoss):
    """Class-balanced softmax cross-entropy (base "softmax")."""

    def __init__(self, num_classes: int, embed_dim: int, class_counts: Sequence[int] | None = None, *,
                 beta: float) -> None:
        super().__init__(num_classes, embed_dim, class_counts, beta=beta, base="softmax")


class ClassBalancedFocal(ClassBalancedLoss):
    """Class-balanced softmax focal loss (base "focal")."""

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        class_counts: Sequence[int] | None = None,
        *,
        beta: float,
        gamma: float,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_counts, beta=beta, base="focal", gamma=gamma)


class ClassBalancedSigmoid(ClassBalancedLoss):
    """Class-balanced sigmoid cross-entropy (base "sigmoid")."""

    def __init__(self, num_classes: int, embed_dim: int, class_counts: Sequence[int] | None = None, *,
                 beta: float) -> None:
        super().__init__(num_classes, embed_dim, class_counts, beta=beta, base="sigmoid")


class ClassBalancedSigmoidFocal(ClassBalancedLoss):
    """Class-balanced sigmoid focal loss (base "sigmoid_focal"), the focal form of Cui et al."""

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        class_counts: Sequence[int] | None = None,
        *,
        beta: float,
        gamma: float,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_counts, beta=beta, base="sigmoid_focal", gamma=gamma)
