"""Softmax cross-entropy and its label-smoothing variant."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.losses.base import Loss


class SoftmaxCrossEntropy(Loss):
    """L = -log softmax(f(x))_y, averaged over the batch. Predict argmax f(x)."""

    def __init__(self, num_classes: int, embed_dim: int) -> None:
        super().__init__()

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target)


class LabelSmoothingCrossEntropy(Loss):
    """Cross-entropy against a smoothed target, the variant of the paper's official code.

    The true class gets 1 - epsilon and every other class epsilon / (C - 1) (Barz & Denzler
    2020, official code: 0.9 and 0.1 / (C - 1)). This differs from PyTorch's built-in
    `label_smoothing`, which spreads epsilon over all C classes, the true one included.
    """

    def __init__(self, num_classes: int, embed_dim: int, *, epsilon: float) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label_smoothing epsilon must lie in [0, 1), got {epsilon}")
        self.num_classes = num_classes
        self.epsilon = epsilon

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(output.float(), dim=1)
        off = self.epsilon / (self.num_classes - 1)
        smooth = torch.full_like(log_probs, off)
        smooth.scatter_(1, target[:, None], 1.0 - self.epsilon)
        return -(smooth * log_probs).sum(dim=1).mean()
