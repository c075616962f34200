"""What every loss provides to the training loop."""

from __future__ import annotations

import torch
from torch import nn


class Loss(nn.Module):
    """A loss over network outputs `f(x)` of shape (N, embed_dim) and integer targets (N,).

    A loss may own parameters (the cross-entropy head of cosine + CE); the trainer adds
    `parameter_groups()` to the optimiser. `scores` maps outputs to (N, C) class scores whose
    argmax is the prediction, because the prediction rule differs between losses.
    """

    @staticmethod
    def output_dim(num_classes: int) -> int:
        """Size of the network output this loss wants (losses that own class weights want features)."""
        return num_classes

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def parameter_groups(self) -> list[dict]:
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params}] if params else []
