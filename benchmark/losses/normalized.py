"""Softmax losses on normalised features: L2-constrained softmax, NormFace, CosFace and ArcFace.

All four receive network outputs of size `embed_dim` = D (features, not class scores) and own the
classifier that maps them to C classes. NormFace, CosFace and ArcFace compare the L2-normalised
feature with L2-normalised class weights W (C x D), so their logits are (scaled, margined) cosines;
the L2-constrained softmax normalises only the feature and keeps an ordinary linear layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.losses.base import Loss

# Floor of 1 - cos^2 before the square root in ArcFace: d sqrt(u)/du is infinite at u = 0 (|cos| = 1),
# which would turn the backward pass into inf * 0 = NaN. The floor moves cos(theta + m) by < 3.2e-4 sin m.
SINE_SQUARED_FLOOR = 1e-7


def full_precision(tensor: torch.Tensor) -> torch.autocast:
    """Autocast off on the tensor's device. Under bf16 autocast the matmul below would give cosines to
    about 3 significant digits, which a scale of 64 and margins of 0.35-0.5 turn into large logit errors."""
    return torch.autocast(tensor.device.type, enabled=False)


def cosine_matrix(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """cos theta_ij = <x_i / ||x_i||, W_j / ||W_j||>, shape (N, C), in float32 (also under autocast)."""
    with full_precision(features):
        return F.normalize(features.float(), dim=1) @ F.normalize(weight.float(), dim=1).T


def unit_gaussian_rows(num_classes: int, embed_dim: int) -> torch.Tensor:
    """Class weights drawn from an isotropic Gaussian and scaled to unit rows (NormFace's
    "gaussian_unitball" filler). Cosine logits ignore the row norms, but the norm sets the effective
    step size on the direction (the gradient scales with 1 / ||W_j||), so all cosine classifiers here
    start from norm 1."""
    return F.normalize(torch.randn(num_classes, embed_dim), dim=1)


def alpha_low(num_classes: int, p: float) -> float:
    """alpha_low = log(p (C - 2) / (1 - p)) (Ranjan et al. 2017, arXiv 1703.09507).

    The paper's lower bound on the feature radius for the correct class to reach an average softmax
    probability p; C = 10, p = 0.9 gives log 72 = 4.28.
    """
    if num_classes < 3:
        raise ValueError(f"alpha_low needs at least 3 classes (log of p (C - 2)), got {num_classes}; give alpha")
    if not 0.0 < p < 1.0:
        raise ValueError(f"alpha_low probability p must lie in (0, 1), got {p}")
    return math.log(p * (num_classes - 2) / (1.0 - p))


class L2ConstrainedSoftmax(Loss):
    """L2-constrained softmax (Ranjan, Castillo, Chellappa 2017, arXiv 1703.09507).

    z = W (alpha x / ||x||) + b, L = CE(z, y); only the feature is normalised, W (C x D) and b are an
    ordinary learned linear layer with ordinary weight decay. alpha is fixed: `alpha=None` takes
    alpha_low(C, p) (with p = 0.9: 4.28 for C = 10, 6.78 for C = 100). The paper also tries a trainable
    alpha and reports the fixed one better (as remembered from the paper; the text was not re-read:
    [unverified]), so no trainable variant is offered. Predict argmax z.
    Expects network outputs of any size D = `embed_dim` (features).
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        alpha: float | None,  # None: alpha_low(C, p), the paper's lower bound
        p: float,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha) if alpha is not None else alpha_low(num_classes, p)
        if self.alpha <= 0:
            raise ValueError(f"L2-softmax alpha must be positive, got {self.alpha}")
        self.classifier = nn.Linear(embed_dim, num_classes)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        with full_precision(output):
            return self.classifier(self.alpha * F.normalize(output.float(), dim=1))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.scores(output), target)


class CosineClassifier(Loss):
    """Shared part of the cosine-softmax losses: class weights W (C x D), cosines, parameter groups.

    `class_weight_decay`: weight decay on W; None leaves W to the optimiser's default.
    Predict argmax_j cos theta_j (the margin is a training device only; the scale does not move the argmax).
    """

    def __init__(self, num_classes: int, embed_dim: int, class_weight_decay: float | None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_weight_decay = class_weight_decay
        self.weight = nn.Parameter(unit_gaussian_rows(num_classes, embed_dim))

    def cosines(self, output: torch.Tensor) -> torch.Tensor:
        return cosine_matrix(output, self.weight)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return self.cosines(output)

    def parameter_groups(self) -> list[dict]:
        weight_group = {"params": [self.weight]}
        if self.class_weight_decay is not None:
            weight_group["weight_decay"] = self.class_weight_decay
        others = [p for p in self.parameters() if p.requires_grad and p is not self.weight]
        return [weight_group, {"params": others}] if others else [weight_group]


class NormFace(CosineClassifier):
    """NormFace (Wang, Xiang, Cheng, Yuille 2017, arXiv 1704.06369; github happynear/NormFace).

    z_j = s cos theta_j = s <x / ||x||, W_j / ||W_j||>, no bias; L = CE(z, y). Without the scale the
    logits lie in [-1, 1] and the loss cannot fall far (the paper's lower bound), so s is learned.
    Defaults from the official `prototxt/scaled_cosine_softmax.prototxt`: s learned, initialised at
    10, kept >= 0.01 (Caffe's min_value, applied here as a projection before each forward pass, so a
    step below the floor is undone rather than freezing s); class weights without weight decay
    (decay_mult 0), the scale with the optimiser's default decay (its layer sets no decay_mult). The
    official lr_mult 100 on W is not reproduced (the trainer has one learning rate per run).
    Expects network outputs of any size D = `embed_dim`. Predict argmax cos theta.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        scale: float,
        learn_scale: bool,
        min_scale: float,
        class_weight_decay: float | None,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_weight_decay)
        if scale < min_scale or min_scale <= 0:
            raise ValueError(f"NormFace needs scale >= min_scale > 0, got scale {scale}, min_scale {min_scale}")
        self.min_scale = float(min_scale)
        initial = torch.tensor(float(scale))
        if learn_scale:
            self.scale = nn.Parameter(initial)
        else:
            self.register_buffer("scale", initial)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.scale.requires_grad:
            with torch.no_grad():
                self.scale.clamp_(min=self.min_scale)
        return F.cross_entropy(self.scale * self.cosines(output), target)


class CosFace(CosineClassifier):
    """CosFace / large margin cosine loss (Wang et al., CVPR 2018, arXiv 1801.09414, Eqs. 4-5).

    z_y = s (cos theta_y - m), z_j = s cos theta_j (j != y), L = CE(z, y); feature and class weights
    L2-normalised, no bias, s fixed. The margin goes to the target column only (one-hot mask).
    Expects network outputs of any size D = `embed_dim`. Predict argmax cos theta (no margin at test).
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        scale: float,
        margin: float,
        class_weight_decay: float | None,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_weight_decay)
        if scale <= 0:
            raise ValueError(f"CosFace scale must be positive, got {scale}")
        self.scale = float(scale)
        self.margin = float(margin)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cosine = self.cosines(output)
        is_target = F.one_hot(target, self.num_classes).bool()
        logits = torch.where(is_target, cosine - self.margin, cosine)
        return F.cross_entropy(self.scale * logits, target)


class ArcFace(CosineClassifier):
    """ArcFace / additive angular margin (Deng et al., CVPR 2019, arXiv 1801.07698; deepinsight/insightface).

    z_y = s cos(theta_y + m), z_j = s cos theta_j (j != y), L = CE(z, y); feature and class weights
    L2-normalised, no bias. cos(theta + m) = cos theta cos m - sin theta sin m with sin theta = sqrt(1 - cos^2
    theta). Past theta + m = pi, cos(theta + m) would rise again with theta, so (insightface, easy_margin=False)
    the target logit is cos(theta + m) only where cos theta > th = cos(pi - m), and cos theta - m sin m
    elsewhere (insightface's `mm`; it keeps the target logit decreasing in theta and below cos theta, though it
    jumps at th). easy_margin=True instead applies the margin only where cos theta > 0 and leaves cos theta
    elsewhere. Expects network outputs of any size D = `embed_dim`. Predict argmax cos theta.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        scale: float,
        margin: float,
        easy_margin: bool,
        class_weight_decay: float | None,
    ) -> None:
        super().__init__(num_classes, embed_dim, class_weight_decay)
        if scale <= 0:
            raise ValueError(f"ArcFace scale must be positive, got {scale}")
        if not 0.0 <= margin < math.pi:
            raise ValueError(f"ArcFace margin must lie in [0, pi), got {margin}")
        self.scale = float(scale)
        self.margin = float(margin)
        self.easy_margin = bool(easy_margin)

    def target_logit(self, cosine: torch.Tensor) -> torch.Tensor:
        """The margined cosine of the target class, elementwise on cos theta (before the scale)."""
        sine = (1.0 - cosine.square()).clamp_min(SINE_SQUARED_FLOOR).sqrt()
        shifted = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        if self.easy_margin:
            return torch.where(cosine > 0, shifted, cosine)
        threshold = math.cos(math.pi - self.margin)
        return torch.where(cosine > threshold, shifted, cosine - self.margin * math.sin(self.margin))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cosine = self.cosines(output)
        is_target = F.one_hot(target, self.num_classes).bool()
        logits = torch.where(is_target, self.target_logit(cosine), cosine)
        return F.cross_entropy(self.scale * logits, target)
