"""Squared error against the one-hot target, on the raw output."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.losses.base import Loss


class SquaredError(Loss):
    """L = sum_c (f(x)_c - onehot(y)_c)^2, averaged over the batch; no normalisation of f(x).

    This is the paper's "MSE" row (Barz & Denzler 2020, Table 2): the sum over classes, not the
    mean that `F.mse_loss` would take. Predict argmax f(x).
    """

    def __init__(self, num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(target, self.num_classes).to(torch.float32)
        return (output.float() - onehot).pow(2).sum(dim=1).mean()
