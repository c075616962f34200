"""Grad-L2 as a training method: cross-entropy plus the input-gradient penalty (benchmark/losses/grad_l2.py).

Bietti, Mialon, Chen, Mairal, "A Kernel Perspective for Regularizing Deep Neural Networks", ICML 2019
(arXiv 1810.00363; github albietz/kernel_reg, reg.py LossAvgGradL2), as GEM uses it
(gem/pipelines/kernelregular.py): L = mean_i CE(f(x_i), y_i) + lambda (1/B) sum_i ||grad_{x_i} CE(f(x_i), y_i)||^2.
Predict argmax f(x).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from benchmark.losses.grad_l2 import gradient_penalty
from benchmark.losses.softmax import SoftmaxCrossEntropy
from benchmark.methods.base import Method, MethodContext


class GradL2(Method):
    """The model's logits trained with CE + lambda * the mean squared norm of each sample's input gradient.

    The penalty differentiates the summed CE with respect to the normalised batch the model receives and
    backpropagates through that gradient (double backprop, one forward pass: see grad_l2_objective). With
    mixup/CutMix targets the CE is the mixed one and the gradient is that of each mixed image's own loss.
    The model runs uncompiled here even when the cell compiles it: torch.compile does not support the
    double backward pass. Settings (method_settings.grad_l2, defaults in the schema): weight (lambda).
    """

    def __init__(self, model: nn.Module, loss: nn.Module, weight: float) -> None:
        super().__init__(model, loss)
        if weight < 0:
            raise ValueError(f"grad_l2 weight must be >= 0, got {weight}")
        self.weight = float(weight)

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model: Callable[[int], nn.Module]) -> GradL2:
        loss = SoftmaxCrossEntropy(context.num_classes, context.num_classes)
        return cls(make_model(context.num_classes), loss, weight=settings["weight"])

    def compile(self) -> None:  # type: ignore[override]
        """Nothing to compile: the double backward pass needs the eager model."""

    def objective(self, x: torch.Tensor, y) -> torch.Tensor:
        leaf = x.detach().clone().requires_grad_(True)
        ce = self.loss_of(self.model(leaf), None, y)  # mean over the batch (mixed targets included)
        return ce + gradient_penalty(ce * x.shape[0], leaf, self.weight)
