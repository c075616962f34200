"""Orthogonal Low-rank Embedding (Lezama, Qiu, Musé, Sapiro, "OLÉ: Orthogonal Low-rank Embedding, A Plug
and Play Geometric Loss for Deep Learning", CVPR 2018, arXiv 1712.01727; official code
github jlezama/OrthogonalLowrankEmbedding, pytorch_OLE/OLE.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.losses.base import Loss

# Singular values below this are left out of the subgradient U V^T (official OLE.py: eig_thd = 1e-6):
# their singular vectors are numerical noise and would add arbitrary directions.
SINGULAR_VALUE_THRESHOLD = 1e-6


class NuclearNorm(torch.autograd.Function):
    """||A||_* = sum of singular values, for a matrix or a batch (..., n, d), with the subgradient U_r V_r^T.

    For A = U diag(s) V^T, d||A||_* / dA = U V^T where every s > 0; U_r, V_r keep the columns with
    s >= SINGULAR_VALUE_THRESHOLD, as the official code does. Autograd of the singular-value sum would
    keep the singular vectors of (numerically) zero singular values too, which are arbitrary; class blocks
    with fewer rows than D or repeated rows always have them.
    Runs in float32 with autocast off (a bf16 SVD is not accurate enough).
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor) -> torch.Tensor:
        with torch.autocast(matrix.device.type, enabled=False):
            u, s, vh = torch.linalg.svd(matrix.float(), full_matrices=False)
            keep = (s >= SINGULAR_VALUE_THRESHOLD).to(s.dtype)
            ctx.save_for_backward((u * keep[..., None, :]) @ vh)
        return s.sum(dim=-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (subgradient,) = ctx.saved_tensors
        return grad[..., None, None] * subgradient


def nuclear_norm(matrix: torch.Tensor) -> torch.Tensor:
    return NuclearNorm.apply(matrix)


def class_blocks(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The rows of each class present in the batch, zero-padded to the largest class: (K, n_max, D).

    Zero rows change neither the singular values nor, on the real rows, U V^T, so one batched SVD of
    the blocks gives every class's nuclear norm and subgradient.
    """
    _, inverse, counts = torch.unique(target, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    block = inverse[order]
    starts = torch.cumsum(counts, dim=0) - counts
    row = torch.arange(len(target), device=target.device) - starts[block]  # position within its class
    empty = features.new_zeros(len(counts), int(counts.max()), features.shape[1])
    return empty.index_put((block, row), features[order])


def ole_penalty(features: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """sum_{c in batch} max(delta, ||X_c||_*) - ||X||_*, X the (B, D) features, X_c the rows of class c.

    A class whose block has ||X_c||_* <= delta contributes the constant delta and no gradient (official
    OLE.py: "if nuclear > delta"). The penalty is >= 0 (X stacks its blocks: triangle inequality) and is 0
    when the classes' features span mutually orthogonal subspaces, each with ||X_c||_* >= delta.
    """
    x = features.float().flatten(1)
    per_class = nuclear_norm(class_blocks(x, target))  # (K,)
    kept = torch.where(per_class > delta, per_class, torch.full_like(per_class, delta))
    return kept.sum() - nuclear_norm(x)


class OLELoss(Loss):
    """L = CE(z, y) + (lambda / B) [sum_c max(delta, ||X_c||_*) - ||X||_*].

    z: the network's class logits (`output`, size C); X: its penultimate features (B x D; after the
    last ReLU and global pooling, before the final linear layer), passed as `features`. The trainer must
    call `forward(output, target, features)` (`uses_features`). Defaults: lambda = 0.25 (official
    CIFAR/STL-10 runs; the README says it must be validated, and uses 0.125 for STL-10 at 50 images per
    class), delta = 1 (official OLE.py). Unlike GEM's gem/pipelines/ole.py, which never passes its tuned
    lambda on, `ole_weight` is used. Predict argmax z.
    """

    uses_features = True

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        ole_weight: float,
        delta: float,
    ) -> None:
        super().__init__()
        if ole_weight < 0 or delta < 0:
            raise ValueError(f"OLE needs ole_weight >= 0 and delta >= 0, got {ole_weight}, {delta}")
        self.ole_weight = float(ole_weight)
        self.delta = float(delta)

    def forward(self, output: torch.Tensor, target: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(output.float(), target)
        return ce + self.ole_weight / features.shape[0] * ole_penalty(features, target, self.delta)
