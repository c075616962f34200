"""t-vMF similarity (Kobayashi, "T-vMF Similarity for Regularizing Intra-Class Feature Distribution",
CVPR 2021; official code github tk1980/tvMF, models/Loss.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.losses.normalized import CosineClassifier


def tvmf_similarity(cosine: torch.Tensor, kappa: float) -> torch.Tensor:
    """phi_kappa(c) = (1 + c) / (1 + kappa (1 - c)) - 1, in [-1, 1]; phi_0(c) = c.

    phi(1) = 1 for every kappa, and larger kappa pulls phi down faster as c leaves 1 (a heavier-tailed
    vMF-like similarity), which concentrates each class's features around its weight.
    """
    return (1.0 + cosine) / (1.0 + kappa * (1.0 - cosine)) - 1.0


class TVMFLoss(CosineClassifier):
    """t-vMF loss: z_j = s phi_kappa(cos theta_j), L = CE(z, y).

    cos theta_j = <x / ||x||, W_j / ||W_j||> with class weights W (C x D) and no bias, as in the official
    `tvMFLoss` (W starts from unit Gaussian rows, the official code from nn.Linear's initialisation; the cosines
    do not depend on the row norms). The scale s = 1 + softplus(s_) with s_ a learned scalar initialised at 0
    (so s starts at 1 + log 2 = 1.693 and stays > 1); kappa is a fixed buffer. The official code puts W and s_
    among the model's parameters under one weight decay (1e-4 for its ResNets), so both get the optimiser's
    default here; decay on s_ pulls s towards 1.693. Prediction: argmax phi, which is argmax cos theta because
    phi is increasing in c for kappa > -1/2 (d phi / dc = (1 + 2 kappa) / (1 + kappa (1 - c))^2); `scores`
    returns cos theta. Expects network outputs of any size D = `embed_dim`.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        kappa: float,
        class_weight_decay: float | None,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_weight_decay)
        if kappa <= -0.5:
            raise ValueError(f"t-vMF kappa must be > -1/2 (phi is not increasing in cos otherwise), got {kappa}")
        self.register_buffer("kappa", torch.tensor(float(kappa)))
        self.scale_raw = nn.Parameter(torch.zeros(()))

    def scale(self) -> torch.Tensor:
        return 1.0 + F.softplus(self.scale_raw)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = self.scale() * tvmf_similarity(self.cosines(output), self.kappa)
        return F.cross_entropy(logits, target)
