"""Grad-L2 penalty (Bietti et al., ICML 2019) against input gradients worked out by hand.

For a linear model f(x) = A x the input gradient of sample i's cross-entropy is A^T (p_i - e_{y_i}),
p_i = softmax(A x_i). With A = [[1, 0], [0, 2], [-1, 1]]:
    x0 = (0, 0), y0 = 0: p = (1/3, 1/3, 1/3), p - e = (-2/3, 1/3, 1/3), g = (-2/3 - 1/3, 2/3 + 1/3) = (-1, 1),
        ||g||^2 = 2.
    x1 = (1, 0), y1 = 1: logits (1, 0, -1), p = (0.665241, 0.244728, 0.090031),
        g = (0.665241 - 0.090031, 2 (0.244728 - 1) + 0.090031) = (0.575210, -1.420513), ||g||^2 = 2.348723.
P = lambda (2 + 2.348723) / 2.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.losses.grad_l2 import grad_l2_objective, input_gradient_penalty

A = [[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]
X = [[0.0, 0.0], [1.0, 0.0]]
Y = [0, 1]


def _hand_penalty(weight: float) -> float:
    norms = []
    for x, y in zip(X, Y, strict=True):
        logits = [sum(a * v for a, v in zip(row, x, strict=True)) for row in A]
        z = sum(math.exp(v) for v in logits)
        residual = [math.exp(v) / z - (1.0 if c == y else 0.0) for c, v in enumerate(logits)]
        g = [sum(A[c][d] * residual[c] for c in range(3)) for d in range(2)]
        norms.append(sum(v * v for v in g))
    assert norms == pytest.approx([2.0, 2.348723], abs=1e-6)
    return weight * sum(norms) / len(norms)


def _linear() -> nn.Linear:
    model = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(A))
    return model


def test_penalty_matches_hand_computation():
    model = _linear()
    x, y = torch.tensor(X), torch.tensor(Y)
    got = input_gradient_penalty(model, x, y, weight=0.5)
    assert got.item() == pytest.approx(_hand_penalty(0.5), rel=1e-5)  # 0.5 * 4.348727 / 2 = 1.087181
    # Mean-reduced CE (a realistic slip) would give gradients 1/B as large and P / B^2.
    assert abs(got.item() / 4 - _hand_penalty(0.5)) > 0.5
    assert not x.requires_grad  # the caller's batch is left alone


def test_penalty_equals_sum_of_per_sample_gradients_for_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=gen)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    expected = 0.0
    for i in range(6):  # each sample's own loss, differentiated on its own
        xi = x[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(xi), y[i:i + 1]), xi)
        expected += g.pow(2).sum().item()
    got = input_gradient_penalty(model, x, y, weight=0.3)
    assert got.item() == pytest.approx(0.3 * expected / 6, rel=1e-5)


def test_penalty_input_gradient_matches_finite_differences():
    """The per-sample input gradient itself, by central differences of the summed CE."""
    model = _linear().double()
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    h = 1e-6
    total = 0.0
    for i in range(2):
        for d in range(2):
            up, down = x.clone(), x.clone()
            up[i, d] += h
            down[i, d] -= h
            ce_up = nn.functional.cross_entropy(model(up), y, reduction="sum").item()
            ce_down = nn.functional.cross_entropy(model(down), y, reduction="sum").item()
            total += ((ce_up - ce_down) / (2 * h)) ** 2
    assert input_gradient_penalty(model, x, y, weight=1.0).item() == pytest.approx(total / 2, rel=1e-6)


def test_penalty_is_differentiable_in_the_parameters():
    """Double backprop: dP/dA from autograd equals central differences of P in A."""
    model = _linear().double()
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    input_gradient_penalty(model, x, y, weight=1.0).backward()
    grad = model.weight.grad.clone()
    assert grad.abs().sum() > 0
    h = 1e-6
    for c in range(3):
        for d in range(2):
            with torch.no_grad():
                model.weight[c, d] += h
            up = input_gradient_penalty(model, x, y, weight=1.0).item()
            with torch.no_grad():
                model.weight[c, d] -= 2 * h
            down = input_gradient_penalty(model, x, y, weight=1.0).item()
            with torch.no_grad():
                model.weight[c, d] += h
            assert grad[c, d].item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), (c, d)


def test_objective_is_mean_ce_plus_penalty_in_one_pass():
    model = _linear()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    x, y = torch.tensor(X), torch.tensor(Y)
    total, ce = grad_l2_objective(model, x, y, weight=0.5)
    assert len(calls) == 1
    # CE by hand: sample 0: log 3; sample 1: log(e + 1 + e^-1) - 0 = 1.407606.
    hand_ce = (math.log(3.0) + math.log(math.e + 1 + math.exp(-1))) / 2
    assert ce.item() == pytest.approx(hand_ce, rel=1e-6)
    assert total.item() == pytest.approx(hand_ce + _hand_penalty(0.5), rel=1e-5)
    total.backward()
    assert model.weight.grad is not None and torch.isfinite(model.weight.grad).all()


def test_zero_weight_gives_plain_ce():
    model = _linear()
    x, y = torch.tensor(X), torch.tensor(Y)
    total, ce = grad_l2_objective(model, x, y, weight=0.0)
    assert total.item() == pytest.approx(ce.item())
    assert input_gradient_penalty(model, x, y, weight=0.0).item() == 0.0
