"""OLE (Lezama et al., CVPR 2018) against nuclear norms and subgradients worked out by hand.

The batch, in interleaved class order (a loss that grouped rows by position instead of by label fails):
    row 0: (3, 0, 0) class 0      row 1: (1, 0, 0) class 1
    row 2: (0, 4, 0) class 0      row 3: (2, 0, 0) class 1
X_0 = rows 0, 2: orthogonal rows of length 3 and 4 -> singular values 3, 4, ||X_0||_* = 7.
X_1 = rows 1, 3: (1, 2)^T (1, 0, 0), rank 1 -> singular value sqrt(5) = 2.236068.
X: X^T X = diag(9 + 1 + 4, 16, 0) -> singular values 4, sqrt(14) = 3.741657, ||X||_* = 7.741657.
Penalty (delta = 1): 7 + 2.236068 - 7.741657 = 1.494411.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fixtures.methods import make_loss

from benchmark.losses.ole import nuclear_norm, ole_penalty

X = [[3.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 4.0, 0.0], [2.0, 0.0, 0.0]]
Y = [0, 1, 0, 1]
PENALTY = 7.0 + math.sqrt(5.0) - (4.0 + math.sqrt(14.0))


def _batch(requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(X, requires_grad=requires_grad), torch.tensor(Y)


def _numpy_penalty(x: np.ndarray, y: np.ndarray, delta: float) -> float:
    """The penalty from numpy's SVD, class by class (independent of the torch code)."""
    def nuc(a):
        return np.linalg.svd(a, compute_uv=False).sum()
    return sum(max(delta, nuc(x[y == c])) for c in np.unique(y)) - nuc(x)


def test_nuclear_norm_by_hand():
    assert abs(PENALTY - 1.494411) < 1e-6
    x, _ = _batch()
    assert nuclear_norm(x).item() == pytest.approx(4.0 + math.sqrt(14.0), rel=1e-6)
    assert nuclear_norm(x[[0, 2]]).item() == pytest.approx(7.0, rel=1e-6)
    assert nuclear_norm(x[[1, 3]]).item() == pytest.approx(math.sqrt(5.0), rel=1e-6)
    # Batched: one norm per matrix.
    assert nuclear_norm(torch.stack([x[[0, 2]], x[[1, 3]]])).tolist() == pytest.approx([7.0, math.sqrt(5.0)],
                                                                                       rel=1e-6)


def test_ole_penalty_by_hand_and_label_alignment():
    x, y = _batch()
    assert ole_penalty(x, y, 1.0).item() == pytest.approx(PENALTY, rel=1e-5)
    # Labels matter: pairing rows (0, 3) and (1, 2) instead gives blocks (3, 0, 0), (2, 0, 0) -> sqrt(13) and
    # (1, 0, 0), (0, 4, 0) -> 1 + 4 = 5: 3.605551 + 5 - 7.741657 = 0.863894.
    swapped = torch.tensor([0, 1, 1, 0])
    assert ole_penalty(x, swapped, 1.0).item() == pytest.approx(0.863894, abs=1e-5)
    assert abs(ole_penalty(x, swapped, 1.0).item() - PENALTY) > 0.5


def test_ole_penalty_delta_floor():
    x, y = _batch()
    # delta = 3: class 1's sqrt(5) = 2.236 is under it and counts as 3: 7 + 3 - 7.741657 = 2.258343.
    assert ole_penalty(x, y, 3.0).item() == pytest.approx(10.0 - 7.741657, rel=1e-5)


def test_ole_subgradient_by_hand():
    x, y = _batch(requires_grad=True)
    ole_penalty(x, y, 1.0).backward()
    # d||X_0||_* = U V^T = rows (1, 0, 0), (0, 1, 0) on rows 0, 2; d||X_1||_* = (1, 2)/sqrt5 (1, 0, 0) on rows 1, 3;
    # d||X||_* = (a / sqrt14, b / 4) as columns with a = (3, 1, 0, 2), b = (0, 0, 4, 0).
    r5, r14 = math.sqrt(5.0), math.sqrt(14.0)
    expected = [[1 - 3 / r14, 0, 0], [1 / r5 - 1 / r14, 0, 0], [0, 1 - 1, 0], [2 / r5 - 2 / r14, 0, 0]]
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=1e-6)


def test_ole_subgradient_of_class_under_delta_is_zero():
    x, y = _batch(requires_grad=True)
    ole_penalty(x, y, 3.0).backward()
    r14 = math.sqrt(14.0)
    # Only the whole-batch term acts on class 1's rows.
    np.testing.assert_allclose(x.grad[[1, 3]].numpy(), [[-1 / r14, 0, 0], [-2 / r14, 0, 0]], atol=1e-6)


def test_ole_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, generator=gen, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    leaf = x.clone().float().requires_grad_(True)
    ole_penalty(leaf, y, 1.0).backward()
    xn, yn, h = x.numpy(), y.numpy(), 1e-5
    numeric = np.zeros_like(xn)
    for i in range(xn.shape[0]):
        for j in range(xn.shape[1]):
            up, down = xn.copy(), xn.copy()
            up[i, j] += h
            down[i, j] -= h
            numeric[i, j] = (_numpy_penalty(up, yn, 1.0) - _numpy_penalty(down, yn, 1.0)) / (2 * h)
    np.testing.assert_allclose(leaf.grad.double().numpy(), numeric, rtol=1e-3, atol=1e-4)


def test_subgradient_drops_zero_singular_values():
    # Class 0 has two identical rows (singular values 2 and 0), class 1 a zero row, class 2 one sample.
    x = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]],
                     requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2])
    value = ole_penalty(x, y, 1.0)
    value.backward()
    # Blocks: class 0: U_r V_r^T = (1, 1)/sqrt2 (1, 1, 0)/sqrt2 -> rows (0.5, 0.5, 0); class 1: (0, 1, 0) on row 3
    # only; class 2: (0, 0, 1). Whole batch: X has full column rank, so U V^T = X (X^T X)^(-1/2).
    blocks = np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]])
    xn = x.detach().double().numpy()
    evals, evecs = np.linalg.eigh(xn.T @ xn)
    polar = xn @ evecs @ np.diag(evals ** -0.5) @ evecs.T
    np.testing.assert_allclose(x.grad.numpy(), blocks - polar, atol=1e-5)
    # The nuclear norms: 2 + 2 + 5 - sum sqrt(eig(X^T X)).
    assert value.item() == pytest.approx(9.0 - np.sqrt(evals).sum(), rel=1e-5)
    # Plain autograd of the singular-value sum keeps the arbitrary direction of the zero singular value
    # (for class 0 it gives rows (1, 0, 0), (0, 1, 0)-like noise instead of (0.5, 0.5, 0)).
    leaf = x.detach()[:2].clone().requires_grad_(True)
    torch.linalg.svdvals(leaf).sum().backward()
    assert not torch.allclose(leaf.grad, torch.tensor(blocks[:2], dtype=torch.float32), atol=1e-3)


def test_ole_loss_combines_ce_and_weighted_penalty():
    x, y = _batch()
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.0], [1.0, -1.0], [0.0, 0.0]])
    # CE by hand: rows -> log(1 + e^-2), log(1 + e^-0.5), log(1 + e^-2), log 2; mean over 4.
    ce = (2 * math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-0.5)) + math.log(2.0)) / 4
    loss = make_loss("ole", 2, 2)
    assert loss.uses_features is True
    assert loss.ole_weight == 0.25 and loss.delta == 1.0
    assert loss(logits, y, x).item() == pytest.approx(ce + 0.25 / 4 * PENALTY, rel=1e-5)
    # The tuned weight is used (GEM's pipeline always ran with 0.25).
    heavy = make_loss("ole", 2, 2, ole_weight=2.0)
    assert heavy(logits, y, x).item() == pytest.approx(ce + 2.0 / 4 * PENALTY, rel=1e-5)
    assert torch.equal(loss.scores(logits), logits)
    assert loss.parameter_groups() == []


def test_ole_runs_in_float32_under_bf16_input():
    x, y = _batch()
    value = ole_penalty(x.to(torch.bfloat16), y, 1.0)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(PENALTY, rel=1e-2)  # the inputs here are exact in bf16


def test_class_blocks_group_rows_by_label_and_pad_with_zeros():
    from benchmark.losses.ole import class_blocks

    x = torch.arange(10, dtype=torch.float32).reshape(5, 2)  # rows (0, 1), (2, 3), ..., (8, 9)
    y = torch.tensor([7, 2, 7, 7, 2])
    blocks = class_blocks(x, y)
    # Classes in ascending order (2, 7), rows in batch order, class 2 padded to the 3 rows of class 7.
    assert blocks.tolist() == [[[2, 3], [8, 9], [0, 0]], [[0, 1], [4, 5], [6, 7]]]
