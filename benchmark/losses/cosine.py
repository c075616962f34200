"""Cosine loss and cosine loss + cross-entropy (Barz & Denzler, WACV 2020, Sec. 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.losses.base import Loss

# Keras' BatchNormalization defaults, which the official head uses (keras.layers.BatchNormalization() in
# cls_model of learn_image_embeddings.py, github.com/cvjena/semantic-embeddings): epsilon 1e-3 and a
# moving-average momentum of 0.99 on the old value, i.e. PyTorch momentum 1 - 0.99 = 0.01 on the new one
# (PyTorch's own defaults are 1e-5 and 0.1).
KERAS_BN_EPSILON = 1e-3
KERAS_BN_MOMENTUM = 0.01


class CosineLoss(Loss):
    """L = 1 - <phi(y), f(x) / ||f(x)||>, averaged over the batch.

    phi(y) is a unit-norm class embedding; with one-hot embeddings (the default) the embedding
    dimension is C and L = 1 - f(x)_y / ||f(x)||. The loss lies in [0, 2] and does not change
    when f(x) is scaled by a positive factor. Predict the class whose embedding is closest to
    the normalised output: argmax_c <phi(c), f(x) / ||f(x)||>.
    """

    def __init__(
        self, num_classes: int, embed_dim: int, class_embeddings: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        if class_embeddings is None:
            class_embeddings = torch.eye(num_classes, embed_dim)
        class_embeddings = torch.as_tensor(class_embeddings, dtype=torch.float32)
        if class_embeddings.shape != (num_classes, embed_dim):
            raise ValueError(
                f"class embeddings have shape {tuple(class_embeddings.shape)}, "
                f"expected ({num_classes}, {embed_dim})"
            )
        self.register_buffer("class_embeddings", F.normalize(class_embeddings, dim=1))

    def embed(self, output: torch.Tensor) -> torch.Tensor:
        return F.normalize(output.float(), dim=1)

    def cosine(self, embedded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1.0 - (embedded * self.class_embeddings[target]).sum(dim=1)).mean()

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.cosine(self.embed(output), target)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return self.embed(output) @ self.class_embeddings.T


class CosineCrossEntropyLoss(CosineLoss):
    """L = cosine loss + lambda * CE(head(f(x) / ||f(x)||), y), lambda = 0.1 in the paper.

    The cross-entropy head sits on the L2-normalised embedding: ReLU -> BatchNorm -> Linear(C)
    (the official code's layout, its BatchNorm with Keras' epsilon and momentum), with its own L2
    weight decay (5e-4 in the paper) on the linear layer. Predictions come from the softmax head.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        class_embeddings: torch.Tensor | None = None,
        *,
        ce_weight: float,
        head_weight_decay: float,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_embeddings)
        self.ce_weight = ce_weight
        self.head_weight_decay = head_weight_decay
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.BatchNorm1d(embed_dim, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM),
            nn.Linear(embed_dim, num_classes),
        )

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(output)
        logits = self.head(embedded)
        return self.cosine(embedded, target) + self.ce_weight * F.cross_entropy(logits, target)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(output))

    def parameter_groups(self) -> list[dict]:
        linear = self.head[2]
        decayed = [linear.weight]
        others = [p for p in self.head.parameters() if p is not linear.weight]
        return [
            {"params": decayed, "weight_decay": self.head_weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]
