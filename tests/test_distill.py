"""Hinton KD and RKD (Park et al., CVPR 2019) against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.methods.distill import (
    angle_potentials,
    kd_loss,
    pairwise_distances,
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
    soft_target_kl,
)


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _huber(d: float) -> float:
    """Smooth L1 with threshold 1: 0.5 d^2 inside, |d| - 0.5 outside."""
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


# --------------------------------------------------------------------------- Hinton KD

STUDENT = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
TEACHER = [[3.0, 1.0, 0.0], [0.0, 0.0, 4.0]]
Y = [0, 1]


def test_kd_loss_value_by_hand():
    t, alpha = 2.0, 0.25
    ce = sum(-math.log(_softmax(s)[y]) for s, y in zip(STUDENT, Y, strict=True)) / 2
    kl = 0.0
    for s, z in zip(STUDENT, TEACHER, strict=True):
        p = _softmax([v / t for v in z])
        q = _softmax([v / t for v in s])
        kl += sum(pc * math.log(pc / qc) for pc, qc in zip(p, q, strict=True))
    expected = (1 - alpha) * ce + alpha * t * t * kl / 2  # batchmean: divide the sum by B = 2
    got = kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(Y), alpha=alpha, temperature=t)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # alpha = 0 is plain CE; alpha = 1 the soft term alone.
    assert kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(Y), alpha=0.0).item() == \
        pytest.approx(ce, rel=1e-6)


def _soft_grad(temperature: float) -> torch.Tensor:
    student = torch.tensor(STUDENT, requires_grad=True)
    soft_target_kl(student, torch.tensor(TEACHER), temperature).backward()
    return student.grad


def test_soft_term_gradient_is_t_times_probability_gap():
    # d/dz_s of T^2 KL / B = T (softmax(z_s/T) - softmax(z_t/T)) / B.
    t = 3.0
    expected = [[t * (q - p) / 2 for q, p in zip(_softmax([v / t for v in s]), _softmax([v / t for v in z]),
                                                 strict=True)] for s, z in zip(STUDENT, TEACHER, strict=True)]
    np.testing.assert_allclose(_soft_grad(t).numpy(), np.array(expected), rtol=1e-5)


def test_t_squared_keeps_soft_gradient_independent_of_t():
    # softmax(z/T) ~ 1/C + (z - mean z) / (C T), so the gradient -> (z_s - z_t - mean over classes) / (C B).
    gap = np.array(STUDENT) - np.array(TEACHER)
    limit = (gap - gap.mean(axis=1, keepdims=True)) / (3 * 2)
    # The next term is O(1/T): about 0.006 at T = 50 on these logits.
    for t in (50.0, 200.0):
        np.testing.assert_allclose(_soft_grad(t).numpy(), limit, atol=0.5 / t)
    # Without the T^2 the gradient would shrink by 1/T^2: between T = 50 and 200 it stays put.
    assert _soft_grad(200.0).norm().item() == pytest.approx(_soft_grad(50.0).norm().item(), rel=0.01)


def test_teacher_gets_no_gradient():
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    kd_loss(student, teacher, torch.tensor(Y)).backward()
    assert teacher.grad is None and student.grad is not None


# --------------------------------------------------------------------------- RKD

# Student: right triangle with sides 3, 4, 5; teacher: (0,0), (1,0), (0,1) with sides 1, 1, sqrt 2.
S3 = [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]
T3 = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def test_pairwise_distances_and_zero_diagonal():
    d = pairwise_distances(torch.tensor(S3))
    np.testing.assert_allclose(d.numpy(), [[0, 3, 4], [3, 0, 5], [4, 5, 0]], atol=1e-5)


def test_distance_loss_three_points_by_hand():
    # Student mean of the 6 off-diagonal distances: (3+4+5)*2/6 = 4 -> 0.75, 1, 1.25.
    # Teacher mean: (1+1+sqrt2)/3 = 1.13807 -> 0.87868, 0.87868, 1.24264.
    mu_t = (2 + math.sqrt(2)) / 3
    diffs = [0.75 - 1 / mu_t, 1.0 - 1 / mu_t, 1.25 - math.sqrt(2) / mu_t]  # -0.12868, 0.12132, 0.00736
    expected = 2 * sum(_huber(d) for d in diffs) / 9  # each pair twice among the 9 entries; diagonal 0
    assert expected == pytest.approx(0.0034813, rel=1e-4)
    got = rkd_distance_loss(torch.tensor(S3), torch.tensor(T3))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # The normalisation makes it scale-free: the student x 10 and the teacher x 0.1 change nothing.
    assert rkd_distance_loss(10 * torch.tensor(S3), 0.1 * torch.tensor(T3)).item() == pytest.approx(expected, rel=1e-5)


def test_distance_loss_four_points_uses_the_linear_huber_branch():
    # A tight cluster of three plus one far point against a unit square: the far distances
    # normalise to about 2 for the student and 0.88 for the teacher, a gap above the threshold 1.
    student = [[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [10.0, 0.0]]
    teacher = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]

    def normalised(points):
        d = [[math.dist(a, b) for b in points] for a in points]
        mu = sum(d[i][j] for i in range(4) for j in range(4) if i != j) / 12
        return [[v / mu for v in row] for row in d]

    ds, dt = normalised(student), normalised(teacher)
    gaps = [ds[i][j] - dt[i][j] for i in range(4) for j in range(4)]
    assert max(abs(g) for g in gaps) > 1
    expected = sum(_huber(g) for g in gaps) / 16
    got = rkd_distance_loss(torch.tensor(student), torch.tensor(teacher)).item()
    assert got == pytest.approx(expected, rel=1e-4)
    assert got != pytest.approx(sum(0.5 * g * g for g in gaps) / 16, rel=1e-2)  # not a plain squared error


def test_angle_potentials_by_hand():
    cos = angle_potentials(torch.tensor(S3))
    # At e0 the legs (1,0) and (0,1) are perpendicular; at e1: (-1,0) and (-3,4)/5 -> 3/5;
    # at e2: (0,-1) and (3,-4)/5 -> 4/5.
    assert cos[0, 1, 2].item() == pytest.approx(0.0, abs=1e-6)
    assert cos[1, 0, 2].item() == pytest.approx(0.6, abs=1e-6)
    assert cos[2, 0, 1].item() == pytest.approx(0.8, abs=1e-6)
    assert cos[2, 1, 0].item() == pytest.approx(0.8, abs=1e-6)
    assert cos[1, 2, 2].item() == pytest.approx(1.0, abs=1e-6)  # a leg with itself
    assert cos[1, 1, 2].item() == 0.0  # j = i: zero direction


def test_angle_loss_three_points_by_hand():
    # Teacher cosines: 0 at e0, 1/sqrt2 at e1 and e2. Only [1,0,2], [1,2,0], [2,0,1], [2,1,0] differ.
    r = 1 / math.sqrt(2)
    expected = 2 * (_huber(0.6 - r) + _huber(0.8 - r)) / 27
    assert expected == pytest.approx(0.00074422, rel=1e-3)
    got = rkd_angle_loss(torch.tensor(S3), torch.tensor(T3))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    total = rkd_loss(torch.tensor(S3), torch.tensor(T3))
    assert total.item() == pytest.approx(0.0034813 + 2 * expected, rel=1e-4)


def test_rkd_gradients_finite_with_duplicate_points_and_teacher_detached():
    student = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], requires_grad=True)
    teacher = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    rkd_loss(student, teacher).backward()
    assert torch.isfinite(student.grad).all()
    assert teacher.grad is None
