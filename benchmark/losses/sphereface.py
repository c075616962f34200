"""Multiplicative angular margin: L-Softmax (Liu et al., ICML 2016, arXiv 1612.02295) and SphereFace's
A-Softmax (Liu et al., CVPR 2017, arXiv 1704.08063), with the annealing of the official Caffe code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.losses.base import Loss
from benchmark.losses.normalized import full_precision

# Added to ||x|| ||W_j|| before dividing by it, as the official MarginInnerProduct layer does (1e-9
# there; 1e-6 here because it runs in float32 and x = 0 must not give 0 / 0).
NORM_EPS = 1e-6


def chebyshev(cosine: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as the Chebyshev polynomial T_m(cos theta): T_0 = 1, T_1 = c, T_{n+1} = 2c T_n - T_{n-1}.

    A polynomial in cos theta needs no acos, whose gradient is infinite at |cos theta| = 1.
    """
    previous, current = torch.ones_like(cosine), cosine
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2.0 * cosine * current - previous
    return current


def psi(cosine: torch.Tensor, m: int) -> torch.Tensor:
    """psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi / m, (k + 1) pi / m], k = 0 .. m - 1.

    k counts the interval boundaries cos(j pi / m), j = 1 .. m - 1, that cos theta lies at or below (the
    official code's sign-based k). psi is continuous, decreasing from 1 at theta = 0 to 1 - 2m at pi, and
    psi <= cos theta, so the target needs a larger margin over the other classes.
    """
    cosine = cosine.clamp(-1.0, 1.0)
    k = torch.zeros_like(cosine)
    for j in range(1, m):
        k = k + (cosine <= math.cos(j * math.pi / m)).to(cosine.dtype)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * chebyshev(cosine, m) - 2.0 * k


def annealing_lambda(iteration: torch.Tensor, base: float, gamma: float, power: float,
                     lambda_min: float) -> torch.Tensor:
    """lambda = max(lambda_min, base (1 + gamma iteration)^(-power)), the official Caffe schedule.

    On the iteration tensor's device (float64), so reading the schedule never waits for the GPU.
    """
    return (base * (1.0 + gamma * iteration.double()) ** (-power)).clamp_min(lambda_min)


class LargeMarginSoftmax(Loss):
    """L-Softmax / A-Softmax with the annealed target logit.

    Non-target logits z_j = W_j x; target logit z_y = ||W_y|| ||x|| (lambda cos theta_y + psi(theta_y)) /
    (1 + lambda), psi from `psi` with the integer margin m. lambda follows `annealing_lambda` per training
    iteration (without it, training diverges: the target logit starts far below the others); large
    lambda gives the plain softmax, lambda -> lambda_min the full margin. The loss counts its own
    iterations in the buffer `iteration`: each forward pass in training mode uses the current value and
    then adds 1 (so it is saved with the loss's state_dict and resumes with a checkpoint).

    `normalize_weights=True` is A-Softmax: ||W_j|| = 1 in every forward pass (then z_j = ||x|| cos theta_j),
    prediction argmax cos theta. False is L-Softmax: W kept as learned, prediction argmax W x (the
    official test layer is a plain inner product). No bias in either. Expects network outputs of any
    size D = `embed_dim` (features); W (C x D) has nn.Linear's initialisation and ordinary weight decay
    (decay_mult 1 in both official prototxts).
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        margin: int,
        base: float,
        gamma: float,
        power: float,
        lambda_min: float,
        normalize_weights: bool,
    ) -> None:
        super().__init__()
        if int(margin) != margin or margin < 1:
            raise ValueError(f"the multiplicative margin m must be a positive integer, got {margin}")
        if base < 0 or gamma < 0 or power < 0 or lambda_min < 0:
            raise ValueError("the lambda schedule needs base, gamma, power, lambda_min >= 0")
        self.num_classes = num_classes
        self.margin = int(margin)
        self.schedule = {"base": float(base), "gamma": float(gamma), "power": float(power),
                         "lambda_min": float(lambda_min)}
        self.normalize_weights = bool(normalize_weights)
        self.weight = nn.Parameter(nn.Linear(embed_dim, num_classes, bias=False).weight.detach().clone())
        self.register_buffer("iteration", torch.zeros((), dtype=torch.int64))

    def current_lambda(self) -> torch.Tensor:
        return annealing_lambda(self.iteration, **self.schedule)

    def class_weights(self) -> torch.Tensor:
        weight = self.weight.float()
        return F.normalize(weight, dim=1) if self.normalize_weights else weight

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        with full_precision(output):
            weight = self.class_weights()
            if self.normalize_weights:
                return F.normalize(output.float(), dim=1) @ weight.T
            return output.float() @ weight.T

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        lam = self.current_lambda().float()
        if self.training:
            self.iteration += 1
        with full_precision(output):
            x = output.float()
            weight = self.class_weights()
            logits = x @ weight.T
            norms = x.norm(dim=1, keepdim=True) * weight.norm(dim=1)[None, :]  # ||x_i|| ||W_j||, (N, C)
            cosine = logits / (norms + NORM_EPS)
            margined = norms * (lam * cosine + psi(cosine, self.margin)) / (1.0 + lam)
            is_target = F.one_hot(target, self.num_classes).bool()
            return F.cross_entropy(torch.where(is_target, margined, logits), target)


class SphereFace(LargeMarginSoftmax):
    """A-Softmax (SphereFace): normalised class weights, no bias, m = 4.

    Defaults from the official `train/code/sphereface_model.prototxt`: m = 4, lambda = max(5,
    1000 (1 + 0.12 iteration)^-1), i.e. lambda reaches its floor 5 after about 1650 iterations.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        margin: int,
        base: float,
        gamma: float,
        power: float,
        lambda_min: float,
    ) -> None:
        super().__init__(num_classes, embed_dim, margin, base, gamma, power, lambda_min, normalize_weights=True)


class LSoftmax(LargeMarginSoftmax):
    """L-Softmax: unnormalised class weights, no bias.

    Defaults from the official `myexamples/cifar10/model/cifar_train_test.prototxt` of
    wy1iu/LargeMargin_Softmax_Loss (its features: 512-d, after BN and ReLU): m = 2,
    lambda = max(0, 1000 (1 + 2e-5 iteration)^-45), which is 1000 at the start, about 410 after 1000
    iterations and below 1 after about 8300. Near lambda = 0 it needs BatchNorm on the features (the
    official net has it; its README recommends it): on the digits smoke without BN the feature norm grows
    until the logits overflow, with BN it trains to the same accuracy as softmax.
    """

    def __init__(
        self,
        num_classes: int,
        embed_dim: int,
        *,
        margin: int,
        base: float,
        gamma: float,
        power: float,
        lambda_min: float,
    ) -> None:
        super().__init__(num_classes, embed_dim, margin, base, gamma, power, lambda_min, normalize_weights=False)
