"""Focal and class-balanced losses against values worked out by hand from their definitions.

Expected values come from `math`/`numpy` in float64 straight from the formulas (Lin et al. 2017;
Cui et al. 2019), never from the torch function the implementation might itself use.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fixtures.loss_batch import OUTPUT, TARGET, C
from fixtures.loss_batch import tensors as _tensors

from benchmark.losses.base import Loss
from benchmark.losses.class_balanced import (
    ClassBalancedFocal,
    ClassBalancedLoss,
    ClassBalancedSigmoid,
    ClassBalancedSigmoidFocal,
    ClassBalancedSoftmax,
    class_balanced_weights,
)
from benchmark.losses.focal import FocalLoss

COUNTS = [10, 2, 5, 1]


def _p_true(row: list[float], y: int) -> float:
    return math.exp(row[y]) / sum(math.exp(v) for v in row)


def _hand_focal_terms(gamma: float) -> list[float]:
    probs = [_p_true(r, y) for r, y in zip(OUTPUT, TARGET, strict=True)]
    return [-((1 - p) ** gamma) * math.log(p) for p in probs]


def _hand_ce_terms() -> list[float]:
    return [-math.log(_p_true(r, y)) for r, y in zip(OUTPUT, TARGET, strict=True)]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _hand_sigmoid_terms(gamma: float = 0.0) -> list[float]:
    """sum_c -(1 - p_t)^gamma log p_t, p_t = sigmoid(z_c) for the true class, 1 - sigmoid(z_c) otherwise."""
    terms = []
    for row, y in zip(OUTPUT, TARGET, strict=True):
        total = 0.0
        for c, z in enumerate(row):
            p_t = _sigmoid(z) if c == y else 1.0 - _sigmoid(z)
            total += -((1 - p_t) ** gamma) * math.log(p_t)
        terms.append(total)
    return terms


def _hand_cb_weights(counts: list[int], beta: float) -> list[float]:
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    return [w * len(counts) / sum(raw) for w in raw]


def _weighted_mean(weights: list[float], terms: list[float]) -> float:
    return sum(weights[y] * t for y, t in zip(TARGET, terms, strict=True)) / len(TARGET)


# --------------------------------------------------------------------------- focal

def test_focal_matches_hand_computation():
    out, y = _tensors()
    # Sample 0 by hand: p_1 = e^2 / (e^1 + e^2 + e^0.5 + e^-1) = 7.3891 / 12.1239 = 0.60946,
    # FL = -(1 - 0.60946)^2 ln 0.60946 = 0.15252 * 0.49518 = 0.075524.
    p0 = math.exp(2.0) / (math.exp(1.0) + math.exp(2.0) + math.exp(0.5) + math.exp(-1.0))
    assert p0 == pytest.approx(0.60946, abs=1e-5)
    assert _hand_focal_terms(2.0)[0] == pytest.approx(0.075524, abs=1e-5)
    got = FocalLoss(num_classes=C, embed_dim=C, gamma=2.0, class_weights=None)(out, y)
    assert got.ndim == 0
    assert got.item() == pytest.approx(float(np.mean(_hand_focal_terms(2.0))), rel=1e-6)
    got = FocalLoss(num_classes=C, embed_dim=C, gamma=0.5, class_weights=None)(out, y).item()
    assert got == pytest.approx(float(np.mean(_hand_focal_terms(0.5))), rel=1e-6)


def test_focal_gamma_zero_is_cross_entropy():
    out, y = _tensors()
    got = FocalLoss(num_classes=C, embed_dim=C, gamma=0.0, class_weights=None)(out, y).item()
    assert got == pytest.approx(float(np.mean(_hand_ce_terms())), rel=1e-6)
    assert got == pytest.approx(torch.nn.functional.cross_entropy(out, y).item(), rel=1e-6)


def test_focal_down_weights_easy_examples():
    out, y = _tensors()
    ce = float(np.mean(_hand_ce_terms()))
    values = [FocalLoss(C, C, gamma=g, class_weights=None)(out, y).item() for g in (0.0, 0.5, 1.0, 2.0, 5.0)]
    assert values[0] == pytest.approx(ce, rel=1e-6)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_focal_class_weights():
    out, y = _tensors()
    weights = [0.5, 2.0, 1.0, 3.0]
    got = FocalLoss(num_classes=C, embed_dim=C, gamma=2.0, class_weights=weights)(out, y).item()
    assert got == pytest.approx(_weighted_mean(weights, _hand_focal_terms(2.0)), rel=1e-6)
    with pytest.raises(ValueError, match="one per class"):
        FocalLoss(num_classes=C, embed_dim=C, gamma=2.0, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        FocalLoss(num_classes=C, embed_dim=C, gamma=2.0, class_weights=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(num_classes=C, embed_dim=C, gamma=-1.0, class_weights=None)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_gradients_finite_even_when_certain(gamma):
    out = torch.tensor([[60.0, 0.0, 0.0], [0.0, 1.0, -1.0]], requires_grad=True)  # p_y == 1.0 in float32
    loss = FocalLoss(num_classes=3, embed_dim=3, gamma=gamma, class_weights=None)
    value = loss(out, torch.tensor([0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(out.grad).all()
    assert out.grad[1].abs().sum() > 0


# --------------------------------------------------------------------------- class-balanced weights

def test_class_balanced_weights_by_hand():
    # beta = 0.9: w = 0.1 / (1 - 0.9^n)
    # n = 10: 0.1 / 0.65132 = 0.153533;  n = 2: 0.1 / 0.19 = 0.526316;
    # n = 5: 0.1 / 0.40951 = 0.244194;   n = 1: 0.1 / 0.1 = 1.0;  sum = 1.924043.
    raw = [0.1 / (1 - 0.9**10), 0.1 / (1 - 0.9**2), 0.1 / (1 - 0.9**5), 1.0]
    assert raw == pytest.approx([0.153533, 0.526316, 0.244194, 1.0], abs=1e-6)
    expected = [w * 4 / sum(raw) for w in raw]
    got = class_balanced_weights(COUNTS, 0.9)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.sum() == pytest.approx(C, rel=1e-12)
    # Rarer classes get larger weights.
    assert list(np.argsort(got)) == [0, 2, 1, 3]


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999])
def test_class_balanced_weights_sum_to_num_classes(beta):
    counts = [30, 4, 60, 44, 7, 1, 500]
    got = class_balanced_weights(counts, beta)
    assert got.sum() == pytest.approx(len(counts), rel=1e-12)
    np.testing.assert_allclose(got, _hand_cb_weights(counts, beta), rtol=1e-9)


def test_class_balanced_weights_limits():
    np.testing.assert_array_equal(class_balanced_weights(COUNTS, 0.0), np.ones(C))
    np.testing.assert_allclose(class_balanced_weights([7, 7, 7], 0.999), np.ones(3), rtol=1e-12)
    # beta -> 1: inverse class frequency, normalised to sum to C.
    inverse = np.array([1 / n for n in COUNTS])
    near_one = class_balanced_weights(COUNTS, 1 - 1e-9)
    np.testing.assert_allclose(near_one, inverse * C / inverse.sum(), rtol=1e-6)


@pytest.mark.parametrize(
    ("counts", "beta", "message"),
    [
        ([3, 0, 2], 0.9, "classes without samples: \\[1\\]"),
        ([3, 1.5, 2], 0.9, "positive integers"),
        ([], 0.9, "non-empty"),
        ([3, 2], 1.0, "beta"),
        ([3, 2], -0.1, "beta"),
    ],
)
def test_class_balanced_weights_reject_bad_input(counts, beta, message):
    with pytest.raises(ValueError, match=message):
        class_balanced_weights(counts, beta)


# --------------------------------------------------------------------------- class-balanced losses

def test_class_balanced_softmax_by_hand():
    out, y = _tensors()
    w = _hand_cb_weights(COUNTS, 0.9)
    got = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.9, base="softmax")(out, y).item()
    # Mean over the batch of w_y * CE (not divided by the sum of the batch's weights).
    assert got == pytest.approx(_weighted_mean(w, _hand_ce_terms()), rel=1e-6)
    w_tensor = torch.tensor(w, dtype=torch.float32)
    torch_weighted = torch.nn.functional.cross_entropy(out, y, weight=w_tensor).item()
    assert abs(got - torch_weighted) > 1e-3


def test_class_balanced_focal_by_hand():
    out, y = _tensors()
    w = _hand_cb_weights(COUNTS, 0.99)
    got = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.99, base="focal", gamma=2.0)(out, y).item()
    assert got == pytest.approx(_weighted_mean(w, _hand_focal_terms(2.0)), rel=1e-6)
    got = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.99, base="focal", gamma=1.0)(out, y).item()
    assert got == pytest.approx(_weighted_mean(w, _hand_focal_terms(1.0)), rel=1e-6)


def test_class_balanced_sigmoid_by_hand():
    out, y = _tensors()
    # Sample 0 by hand (y = 1): -ln(1 - s(1)) - ln s(2) - ln(1 - s(0.5)) - ln(1 - s(-1))
    #   = 1.31326 + 0.12693 + 0.97408 + 0.31326 = 2.72753
    assert _hand_sigmoid_terms()[0] == pytest.approx(2.72753, abs=1e-5)
    w = _hand_cb_weights(COUNTS, 0.9)
    got = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.9, base="sigmoid")(out, y).item()
    assert got == pytest.approx(_weighted_mean(w, _hand_sigmoid_terms()), rel=1e-6)
    loss = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.9, base="sigmoid_focal", gamma=2.0)
    got = loss(out, y).item()
    assert got == pytest.approx(_weighted_mean(w, _hand_sigmoid_terms(2.0)), rel=1e-6)


def test_class_balanced_beta_zero_is_plain_loss():
    out, y = _tensors()
    ce = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.0, base="softmax")(out, y).item()
    assert ce == pytest.approx(float(np.mean(_hand_ce_terms())), rel=1e-6)
    focal = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.0, base="focal", gamma=2.0)(out, y).item()
    assert focal == pytest.approx(FocalLoss(C, C, gamma=2.0, class_weights=None)(out, y).item(), rel=1e-6)
    sig = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.0, base="sigmoid")(out, y).item()
    assert sig == pytest.approx(float(np.mean(_hand_sigmoid_terms())), rel=1e-6)


def test_class_balanced_on_balanced_counts_is_plain_loss():
    out, y = _tensors()
    got = ClassBalancedLoss(C, C, class_counts=[20] * C, beta=0.9999, base="softmax")(out, y).item()
    assert got == pytest.approx(float(np.mean(_hand_ce_terms())), rel=1e-6)


@pytest.mark.parametrize(
    ("cls", "base", "kwargs"),
    [
        (ClassBalancedSoftmax, "softmax", {}),
        (ClassBalancedFocal, "focal", {"gamma": 1.5}),
        (ClassBalancedSigmoid, "sigmoid", {}),
        (ClassBalancedSigmoidFocal, "sigmoid_focal", {"gamma": 1.5}),
    ],
)
def test_class_balanced_named_variants(cls, base, kwargs):
    out, y = _tensors()
    loss = cls(num_classes=C, embed_dim=C, class_counts=COUNTS, beta=0.99, **kwargs)
    assert isinstance(loss, Loss) and loss.base == base and cls.needs_class_counts
    general = ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.99, base=base, **kwargs)
    assert loss(out, y).item() == pytest.approx(general(out, y).item(), rel=1e-7)
    assert torch.equal(loss.scores(out), out)
    assert loss.parameter_groups() == []
    grad_in = out.clone().requires_grad_(True)
    loss(grad_in, y).backward()
    assert torch.isfinite(grad_in.grad).all() and grad_in.grad.abs().sum() > 0


def test_class_balanced_constructor_errors():
    with pytest.raises(ValueError, match="needs class_counts"):
        ClassBalancedSoftmax(num_classes=C, embed_dim=C, beta=0.9)
    with pytest.raises(ValueError, match="expected 4"):
        ClassBalancedLoss(C, C, class_counts=[1, 2, 3], beta=0.9, base="softmax")
    with pytest.raises(ValueError, match="unknown class-balanced base"):
        ClassBalancedLoss(C, C, class_counts=COUNTS, beta=0.9, base="mse")
    with pytest.raises(ValueError, match="classes without samples"):
        ClassBalancedLoss(C, C, class_counts=[3, 0, 2, 1], beta=0.9, base="softmax")


def test_class_balanced_weights_move_with_the_module():
    loss = ClassBalancedSoftmax(C, C, class_counts=COUNTS, beta=0.9)
    assert "class_weights" in dict(loss.named_buffers())
    assert loss.class_weights.dtype == torch.float32
    assert float(loss.class_weights.sum()) == pytest.approx(C, rel=1e-6)
