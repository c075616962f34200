"""Grad-L2: the squared norm of the loss's input gradient as a penalty (Bietti, Mialon, Chen, Mairal, "A
Kernel Perspective for Regularizing Deep Neural Networks", ICML 2019, arXiv 1810.00363; official code
github albietz/kernel_reg, reg.py LossAvgGradL2; GEM gem/pipelines/kernelregular.py uses it unchanged).

Not a loss on network outputs: it needs the network itself, to differentiate the cross-entropy with respect
to the input batch and then backpropagate through that gradient (double backprop, 2-3x the compute of a
plain step). benchmark/methods/grad_l2.py makes it a training method (weight lambda: the schema).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


def gradient_penalty(loss_sum: torch.Tensor, leaf: torch.Tensor, weight: float) -> torch.Tensor:
    """lambda (1/B) sum_i ||d loss_sum / d x_i||^2 for a loss summed over the batch computed from the leaf x.

    The sum, not the mean: its gradient w.r.t. x_i is that of sample i's own loss, l(f(x_i), y_i). The
    gradient keeps its graph (create_graph), so the result backpropagates to the parameters (double backprop).
    """
    (grad,) = torch.autograd.grad(loss_sum, leaf, create_graph=True)
    dtype = torch.promote_types(loss_sum.dtype, torch.float32)
    return weight * grad.to(dtype).pow(2).sum() / leaf.shape[0]


def _penalty_from_logits(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                         weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed CE, lambda (1/B) sum_i ||d CE_sum / d x_i||^2) for logits computed from the leaf x."""
    # At least float32 (bf16 logits under autocast), float64 kept as it is.
    dtype = torch.promote_types(logits.dtype, torch.float32)
    ce_sum = F.cross_entropy(logits.to(dtype), y, reduction="sum")
    return ce_sum, gradient_penalty(ce_sum, x, weight)


def input_gradient_penalty(forward: Forward, x: torch.Tensor, y: torch.Tensor, weight: float) -> torch.Tensor:
    """P = lambda (1/B) sum_i ||grad_{x_i} l(f(x_i), y_i)||^2, l the cross-entropy, with its own forward pass.

    `forward` maps the batch x (what the model receives, i.e. normalised images: the penalty's size
    depends on that normalisation) to logits. x is cloned as a new leaf, as in both official codes; the
    result is differentiable w.r.t. the model's parameters. The gradient w.r.t. x_i is that of the
    sample's own loss only when samples do not interact: BatchNorm in training mode mixes them (and this
    second pass updates its running statistics again), which is why Bietti et al. train without BN.
    """
    leaf = x.detach().clone().requires_grad_(True)
    return _penalty_from_logits(forward(leaf), leaf, y, weight)[1]


def grad_l2_objective(forward: Forward, x: torch.Tensor, y: torch.Tensor,
                      weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean CE + P, mean CE) from a single forward pass.

    The official codes run the network twice (once for the CE, once on a clone for P); the objective is
    the same for a deterministic network (no dropout), but one pass saves a forward and, with BatchNorm,
    updates its running statistics once. Returns the total to backpropagate and the CE alone (for logging).
    """
    leaf = x.detach().clone().requires_grad_(True)
    ce_sum, penalty = _penalty_from_logits(forward(leaf), leaf, y, weight)
    ce = ce_sum / x.shape[0]
    return ce + penalty, ce.detach()
