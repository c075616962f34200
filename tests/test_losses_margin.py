"""Normalised and margin softmax losses against values worked out by hand from their definitions.

A 2-D example keeps the cosines readable: class weights W (given with non-unit rows, to check the
normalisation) point at 0, 90 and 135 degrees, the features at 53.13, 180 and 45 degrees:
    W unit rows: (1, 0), (0, 1), (-1/sqrt2, 1/sqrt2)
    x0 = (3, 4) -> unit (0.6, 0.8):  cos = (0.6, 0.8, 0.2/sqrt2 = 0.141421)
    x1 = (-1, 0):                    cos = (-1, 0, 1/sqrt2 = 0.707107)
    x2 = (1, 1) -> unit (1, 1)/sqrt2: cos = (0.707107, 0.707107, 0)
Expected values are computed with `math` in float64 from the formulas, never with the torch code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.methods import make_loss
from fixtures.tensors import assert_close

from benchmark.losses.normalized import alpha_low
from benchmark.losses.sphereface import LargeMarginSoftmax, annealing_lambda, chebyshev, psi
from benchmark.losses.tvmf import tvmf_similarity

R2 = math.sqrt(2.0)
WEIGHT = [[2.0, 0.0], [0.0, 0.5], [-3.0, 3.0]]
FEATURES = [[3.0, 4.0], [-1.0, 0.0], [1.0, 1.0]]
COS = [[0.6, 0.8, 0.2 / R2], [-1.0, 0.0, 1 / R2], [1 / R2, 1 / R2, 0.0]]
TARGET = [1, 0, 2]  # sample 1 sits at theta = pi from its class: ArcFace's threshold branch


def _ce(rows: list[list[float]], targets: list[int]) -> float:
    """Mean over rows of log(sum_j e^{z_j}) - z_y."""
    return sum(math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(rows, targets, strict=True)) / len(
        rows
    )


def _with_weight(loss, weight=WEIGHT):
    with torch.no_grad():
        loss.weight.copy_(torch.tensor(weight))
    return loss


def _x() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(FEATURES), torch.tensor(TARGET)


# --------------------------------------------------------------------------- L2-constrained softmax

def test_alpha_low_matches_formula_and_reference_figures():
    # log(0.9 * 8 / 0.1) = log 72; log(0.9 * 98 / 0.1) = log 882; log(0.9 * 198 / 0.1) = log 1782
    assert alpha_low(10, 0.9) == pytest.approx(math.log(72.0)) == pytest.approx(4.2767, abs=1e-4)
    assert alpha_low(100, 0.9) == pytest.approx(6.7822, abs=1e-4)
    assert alpha_low(200, 0.9) == pytest.approx(7.4855, abs=1e-4)
    assert alpha_low(10, p=0.5) == pytest.approx(math.log(8.0))
    with pytest.raises(ValueError, match="3 classes"):
        alpha_low(2, 0.9)


def test_l2_softmax_matches_hand_computation():
    loss = make_loss("l2_softmax", 3, 2, alpha=2.0)
    w = [[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]]
    b = [0.1, -0.2, 0.3]
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor(w))
        loss.classifier.bias.copy_(torch.tensor(b))
    x, y = _x()
    # Sample 0: 2 * (0.6, 0.8) = (1.2, 1.6); z = (1.2 - 1.6 + 0.1, 0.6 + 3.2 - 0.2, 1.6 + 0.3) = (-0.3, 3.6, 1.9)
    units = [[0.6, 0.8], [-1.0, 0.0], [1 / R2, 1 / R2]]
    rows = [[2.0 * (wj[0] * u[0] + wj[1] * u[1]) + bj for wj, bj in zip(w, b, strict=True)] for u in units]
    assert rows[0] == pytest.approx([-0.3, 3.6, 1.9])
    assert loss(x, y).item() == pytest.approx(_ce(rows, TARGET), rel=1e-6)
    assert_close(loss.scores(x), torch.tensor(rows), rtol=1e-6, atol=1e-6)
    # Only the feature is normalised: scaling x changes nothing.
    assert loss(10 * x, y).item() == pytest.approx(_ce(rows, TARGET), rel=1e-5)


def test_l2_softmax_default_alpha_and_ordinary_parameters():
    loss = make_loss("l2_softmax", 10, 16)
    assert loss.alpha == pytest.approx(math.log(72.0))
    assert make_loss("l2_softmax", 10, 16, alpha=16).alpha == 16.0
    groups = loss.parameter_groups()
    assert len(groups) == 1 and "weight_decay" not in groups[0]  # W and b take the optimiser's decay


# --------------------------------------------------------------------------- NormFace

def test_normface_matches_hand_computation():
    loss = _with_weight(make_loss("normface", 3, 2))
    x, y = _x()
    assert loss.scale.item() == 10.0 and loss.scale.requires_grad
    # Sample 0: z = 10 cos = (6, 8, 1.41421), y = 1: log(403.4288 + 2980.9580 + 4.1133) - 8 = 0.128143
    assert _ce([[6.0, 8.0, 10 * 0.2 / R2]], [1]) == pytest.approx(0.128143, abs=1e-6)
    expected = _ce([[10 * c for c in row] for row in COS], TARGET)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-6)
    assert_close(loss.scores(x), torch.tensor(COS), rtol=1e-6, atol=1e-6)


def test_normface_scale_is_learned_and_kept_above_floor():
    loss = _with_weight(make_loss("normface", 3, 2))
    x, y = _x()
    loss(x, y).backward()
    # dL/ds = mean_i sum_j (p_ij - [j = y_i]) cos_ij: the scale gets a gradient.
    assert loss.scale.grad is not None and loss.scale.grad.abs().item() > 0
    with torch.no_grad():
        loss.scale.fill_(-3.0)  # an optimiser step past the floor
    value = loss(x, y).item()
    assert loss.scale.item() == pytest.approx(0.01)
    assert value == pytest.approx(_ce([[0.01 * c for c in row] for row in COS], TARGET), rel=1e-6)
    fixed = make_loss("normface", 3, 2, scale=5.0, learn_scale=False)
    assert [n for n, _ in fixed.named_parameters()] == ["weight"]
    assert fixed.scale.item() == 5.0


def test_normface_keeps_class_weights_out_of_weight_decay():
    loss = make_loss("normface", 3, 2)
    groups = loss.parameter_groups()
    assert groups[0]["params"] == [loss.weight] and groups[0]["weight_decay"] == 0.0
    assert groups[1]["params"] == [loss.scale] and "weight_decay" not in groups[1]  # official: default decay


# --------------------------------------------------------------------------- CosFace

def test_cosface_matches_hand_computation():
    s, m = 4.0, 0.35
    loss = _with_weight(make_loss("cosface", 3, 2, scale=s, margin=m))
    x, y = _x()
    # Sample 0, y = 1: z = 4 (0.6, 0.8 - 0.35, 0.141421) = (2.4, 1.8, 0.565685)
    rows = [[s * (c - m if j == t else c) for j, c in enumerate(row)] for row, t in zip(COS, TARGET, strict=True)]
    assert rows[0] == pytest.approx([2.4, 1.8, 0.565685], abs=1e-6)
    assert loss(x, y).item() == pytest.approx(_ce(rows, TARGET), rel=1e-6)
    # The margin sits on the target column: on any other column the loss would be lower, not this value.
    wrong = [[s * (c - m if j == (t + 1) % 3 else c) for j, c in enumerate(row)] for row, t in zip(COS, TARGET,
                                                                                                    strict=True)]
    assert abs(_ce(rows, TARGET) - _ce(wrong, TARGET)) > 0.5
    # No margin at test time.
    assert_close(loss.scores(x), torch.tensor(COS), rtol=1e-6, atol=1e-6)


def test_cosface_defaults_are_the_papers():
    loss = make_loss("cosface", 10, 8)
    assert (loss.scale, loss.margin, loss.class_weight_decay) == (64.0, 0.35, None)
    groups = loss.parameter_groups()
    assert groups == [{"params": [loss.weight]}]
    zero = make_loss("cosface", 10, 8, class_weight_decay=0.0).parameter_groups()
    assert zero[0]["weight_decay"] == 0.0


# --------------------------------------------------------------------------- ArcFace

def _arc_target(c: float, m: float, easy: bool = False) -> float:
    """cos(theta + m) by the angle itself (acos), with insightface's fallbacks."""
    theta = math.acos(max(-1.0, min(1.0, c)))
    if easy:
        return math.cos(theta + m) if c > 0 else c
    return math.cos(theta + m) if theta < math.pi - m else c - m * math.sin(m)


def test_arcface_matches_hand_computation_with_threshold_branch():
    s, m = 4.0, 0.5
    loss = _with_weight(make_loss("arcface", 3, 2, scale=s, margin=m))
    x, y = _x()
    # Sample 0, y = 1: theta = acos 0.8 = 0.643501, cos(1.143501) = 0.8 cos 0.5 - 0.6 sin 0.5 = 0.414411.
    assert _arc_target(0.8, m) == pytest.approx(0.414411, abs=1e-6)
    # Sample 1, y = 0: theta = pi > pi - 0.5, so cos theta - m sin m = -1 - 0.5 * 0.479426 = -1.239713
    # (cos(pi + 0.5) = -0.877583 would raise the target logit: the margin would help the wrong way).
    assert _arc_target(-1.0, m) == pytest.approx(-1.239713, abs=1e-6)
    # Sample 2, y = 2: theta = pi / 2, cos(pi / 2 + 0.5) = -sin 0.5 = -0.479426.
    rows = [[s * (_arc_target(c, m) if j == t else c) for j, c in enumerate(row)]
            for row, t in zip(COS, TARGET, strict=True)]
    assert loss(x, y).item() == pytest.approx(_ce(rows, TARGET), rel=1e-5)
    assert_close(loss.scores(x), torch.tensor(COS), rtol=1e-6, atol=1e-6)


def test_arcface_target_logit_by_angle_on_both_branches():
    m = 0.5
    loss = make_loss("arcface", 3, 2, margin=m)
    # th = cos(pi - 0.5) = -0.877583. 170 degrees: cos = -0.984808 < th -> -0.984808 - 0.239713 = -1.224521.
    angles = [0.0, 0.3, 1.0, 2.0, math.pi - m - 0.01, math.pi - m + 0.01, math.radians(170), math.pi]
    cos = torch.tensor([math.cos(a) for a in angles], dtype=torch.float32)
    got = loss.target_logit(cos).tolist()
    for a, g in zip(angles, got, strict=True):
        assert g == pytest.approx(_arc_target(math.cos(a), m), abs=2e-4), a
    assert got[6] == pytest.approx(-1.224521, abs=1e-5)
    # Realistic bug: cos(theta + m) without the branch would *exceed* cos theta past pi - m.
    assert math.cos(math.radians(170) + m) > math.cos(math.radians(170))
    assert all(g < c for g, c in zip(got, cos.tolist(), strict=True))


def test_arcface_easy_margin():
    m = 0.5
    loss = make_loss("arcface", 3, 2, margin=m, easy_margin=True)
    cos = torch.tensor([0.8, 0.0, -0.5, -1.0])
    # cos > 0: cos(acos 0.8 + 0.5) = 0.414411; otherwise cos theta unchanged.
    assert loss.target_logit(cos).tolist() == pytest.approx([0.414411, 0.0, -0.5, -1.0], abs=1e-5)


def test_arcface_defaults_are_insightfaces():
    loss = make_loss("arcface", 10, 8)
    assert (loss.scale, loss.margin, loss.easy_margin, loss.class_weight_decay) == (64.0, 0.5, False, None)


# --------------------------------------------------------------------------- gradients at |cos| = 1

def _parallel_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Features exactly along (cos = 1) and against (cos = -1) their class weight (the rows of WEIGHT)."""
    x = torch.tensor([[4.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [-1.0, 1.0], [1.0, -1.0]], requires_grad=True)
    return x, torch.tensor([0, 0, 1, 2, 2])


@pytest.mark.parametrize("make", [
    lambda: make_loss("normface", 3, 2),
    lambda: make_loss("cosface", 3, 2),
    lambda: make_loss("arcface", 3, 2),
    lambda: make_loss("arcface", 3, 2, easy_margin=True),
    lambda: make_loss("tvmf", 3, 2),
    lambda: make_loss("sphereface", 3, 2, lambda_min=0.0, base=0.0),
    lambda: make_loss("lsoftmax", 3, 2, lambda_min=0.0, base=0.0),
    lambda: make_loss("l2_softmax", 3, 2),
], ids=["normface", "cosface", "arcface", "arcface_easy", "tvmf", "sphereface", "lsoftmax", "l2_softmax"])
def test_gradients_finite_at_unit_cosine(make):
    loss = make()
    if hasattr(loss, "weight"):
        _with_weight(loss)
    x, y = _parallel_batch()
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(x.grad).all()
    for p in loss.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


# --------------------------------------------------------------------------- T-vMF

def test_tvmf_similarity_by_hand():
    c = torch.tensor([1.0, 0.6, 0.8, 0.2 / R2, -1.0])
    # kappa = 16: (1 + c) / (1 + 16 (1 - c)) - 1: 0.6 -> 1.6 / 7.4 - 1 = -0.783784; 0.8 -> 1.8 / 4.2 - 1 = -0.571429
    expected = [(1 + v) / (1 + 16 * (1 - v)) - 1 for v in c.tolist()]
    assert expected[:3] == pytest.approx([1.0, -0.783784, -0.571429], abs=1e-6)
    assert tvmf_similarity(c, 16.0).tolist() == pytest.approx(expected, abs=1e-6)
    assert tvmf_similarity(c, 0.0).tolist() == pytest.approx(c.tolist(), abs=1e-7)  # kappa = 0: plain cosine
    assert tvmf_similarity(c, 16.0)[-1].item() == pytest.approx(-1.0)  # phi(-1) = -1 for every kappa


def test_tvmf_loss_matches_hand_computation():
    loss = _with_weight(make_loss("tvmf", 3, 2))
    assert loss.kappa.item() == 16.0 and not loss.kappa.requires_grad
    s = 1.0 + math.log(2.0)  # 1 + softplus(0) = 1.693147
    assert loss.scale().item() == pytest.approx(s)
    x, y = _x()
    rows = [[s * ((1 + c) / (1 + 16 * (1 - c)) - 1) for c in row] for row in COS]
    assert loss(x, y).item() == pytest.approx(_ce(rows, TARGET), rel=1e-6)
    assert_close(loss.scores(x), torch.tensor(COS), rtol=1e-6, atol=1e-6)


def test_tvmf_at_kappa_zero_is_scaled_cosine_softmax():
    loss = _with_weight(make_loss("tvmf", 3, 2, kappa=0.0))
    with torch.no_grad():
        loss.scale_raw.fill_(1.0)  # s = 1 + log(1 + e) = 2.313262
    s = 1.0 + math.log1p(math.e)
    x, y = _x()
    assert loss(x, y).item() == pytest.approx(_ce([[s * c for c in row] for row in COS], TARGET), rel=1e-6)
    # ... which is NormFace with that (fixed) scale.
    normface = _with_weight(make_loss("normface", 3, 2, scale=s, learn_scale=False))
    assert loss(x, y).item() == pytest.approx(normface(x, y).item(), rel=1e-6)


def test_tvmf_scale_learned_and_parameter_groups():
    loss = _with_weight(make_loss("tvmf", 3, 2))
    x, y = _x()
    loss(x, y).backward()
    assert loss.scale_raw.grad is not None and loss.scale_raw.grad.abs().item() > 0
    groups = loss.parameter_groups()
    assert groups == [{"params": [loss.weight]}, {"params": [loss.scale_raw]}]  # official: one decay for all
    with pytest.raises(ValueError, match="kappa"):
        make_loss("tvmf", 3, 2, kappa=-0.5)


# --------------------------------------------------------------------------- SphereFace / L-Softmax

def test_chebyshev_is_cos_of_multiple_angle():
    theta = torch.linspace(0, math.pi, 13, dtype=torch.float64)
    for m in range(0, 6):
        assert_close(chebyshev(torch.cos(theta), m), torch.cos(m * theta))
    # T_4(c) = 8c^4 - 8c^2 + 1: at c = 0.5, 0.5 - 2 + 1 = -0.5 = cos(4 pi / 3).
    assert chebyshev(torch.tensor(0.5), 4).item() == pytest.approx(-0.5)


def test_psi_by_hand():
    # m = 4, psi = (-1)^k cos(4 theta) - 2k on [k pi / 4, (k + 1) pi / 4]:
    #   0 -> 1; pi/6 (k=0) -> cos(2pi/3) = -0.5; pi/4 -> -1 (both sides); pi/3 (k=1) -> -cos(4pi/3) - 2 = -1.5;
    #   pi/2 -> -3 (both sides); 2pi/3 (k=2) -> cos(8pi/3) - 4 = -4.5; 5pi/6 (k=3) -> -cos(10pi/3) - 6 = -5.5;
    #   pi (k=3) -> -cos(4pi) - 6 = -7
    angles = [0, math.pi / 6, math.pi / 4, math.pi / 3, math.pi / 2, 2 * math.pi / 3, 5 * math.pi / 6, math.pi]
    cos = torch.tensor([math.cos(a) for a in angles], dtype=torch.float64)
    assert psi(cos, 4).tolist() == pytest.approx([1, -0.5, -1, -1.5, -3, -4.5, -5.5, -7], abs=1e-9)
    # m = 2: pi/3 (k=0) -> cos(2pi/3) = -0.5; 2pi/3 (k=1) -> -cos(4pi/3) - 2 = -1.5; pi -> -cos(2pi) - 2 = -3
    cos2 = torch.tensor([math.cos(math.pi / 3), math.cos(2 * math.pi / 3), -1.0], dtype=torch.float64)
    assert psi(cos2, 2).tolist() == pytest.approx([-0.5, -1.5, -3.0], abs=1e-9)
    # m = 1 is the plain cosine.
    assert psi(cos, 1).tolist() == pytest.approx(cos.tolist())


def test_psi_is_decreasing_and_below_cosine():
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    for m in (2, 3, 4):
        values = psi(torch.cos(theta), m)
        assert (values[1:] < values[:-1]).all(), m
        assert (values <= torch.cos(theta) + 1e-12).all(), m


def test_annealing_lambda_schedule_by_hand():
    def at(iteration, schedule):
        return annealing_lambda(torch.tensor(iteration), **schedule).item()

    sphere = {"base": 1000.0, "gamma": 0.12, "power": 1.0, "lambda_min": 5.0}
    assert at(0, sphere) == 1000.0
    assert at(10, sphere) == pytest.approx(1000 / 2.2)  # 454.545
    assert at(10_000, sphere) == 5.0  # 1000 / 1201 = 0.83 < 5
    lsoft = {"base": 1000.0, "gamma": 2e-5, "power": 45.0, "lambda_min": 0.0}
    assert at(1000, lsoft) == pytest.approx(1000 * 1.02 ** -45)  # 410.1
    assert at(1000, lsoft) == pytest.approx(410.1, abs=0.1)


def _large_margin(normalize: bool, lam: float) -> LargeMarginSoftmax:
    """m = 4 with a constant lambda (gamma = 0 keeps lambda = base)."""
    loss = LargeMarginSoftmax(num_classes=3, embed_dim=2, margin=4, base=lam, gamma=0.0, power=1.0,
                              lambda_min=0.0, normalize_weights=normalize)
    return _with_weight(loss, [[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def test_lsoftmax_target_logit_by_hand():
    # x = 2 (cos 60, sin 60) = (1, 1.732051), class 0 with ||W_0|| = 2: theta = pi/3, cos = 0.5, psi = -1.5.
    # lambda = 1: z_0 = ||W_0|| ||x|| (0.5 - 1.5) / 2 = 2 * 2 * -0.5 = -2; z_1 = W_1 x = 1.732051; z_2 = -1.
    x = torch.tensor([[1.0, math.sqrt(3.0)]])
    y = torch.tensor([0])
    loss = _large_margin(normalize=False, lam=1.0)
    assert loss(x, y).item() == pytest.approx(_ce([[-2.0, math.sqrt(3.0), -1.0]], [0]), rel=1e-5)
    # lambda = 3: (3 * 0.5 - 1.5) / 4 = 0 -> z_0 = 0.
    assert _large_margin(False, 3.0)(x, y).item() == pytest.approx(_ce([[0.0, math.sqrt(3.0), -1.0]], [0]), rel=1e-5)
    # Target class 1 instead: theta = pi/6, psi = -0.5, ||W_1|| = 1; lambda = 1: z_1 = 2 (0.866025 - 0.5) / 2.
    z1 = 2 * (math.cos(math.pi / 6) - 0.5) / 2
    assert loss(x, torch.tensor([1])).item() == pytest.approx(_ce([[2.0, z1, -1.0]], [1]), rel=1e-5)
    # L-Softmax predicts with the plain inner product W x.
    assert loss.scores(x).tolist()[0] == pytest.approx([2.0, math.sqrt(3.0), -1.0], abs=1e-6)


def test_sphereface_normalises_weights_by_hand():
    x = torch.tensor([[1.0, math.sqrt(3.0)]])
    y = torch.tensor([0])
    loss = _large_margin(normalize=True, lam=1.0)
    # ||W_j|| = 1: z_0 = ||x|| (0.5 - 1.5) / 2 = -1; z_1 = ||x|| cos 30 = 1.732051; z_2 = ||x|| cos 120 = -1.
    assert loss(x, y).item() == pytest.approx(_ce([[-1.0, math.sqrt(3.0), -1.0]], [0]), rel=1e-5)
    # Predict by cosine: (0.5, 0.866025, -0.5).
    assert loss.scores(x).tolist()[0] == pytest.approx([0.5, math.sqrt(3.0) / 2, -0.5], abs=1e-6)


def test_large_lambda_is_plain_softmax():
    x, y = _x()
    loss = _large_margin(normalize=False, lam=1e9)
    logits = x @ loss.weight.detach().T
    assert loss(x, y).item() == pytest.approx(_ce(logits.tolist(), TARGET), rel=1e-5)


def test_iteration_counter_advances_in_training_only():
    loss = make_loss("sphereface", 3, 2)
    x, y = _x()
    assert loss.current_lambda().item() == 1000.0
    for _ in range(10):
        loss(x, y)
    assert int(loss.iteration) == 10
    assert loss.current_lambda().item() == pytest.approx(1000 / 2.2)
    loss.eval()
    loss(x, y)
    assert int(loss.iteration) == 10
    # The counter is state: it travels with the loss's state_dict (checkpoints resume the schedule).
    fresh = make_loss("sphereface", 3, 2)
    fresh.load_state_dict(loss.state_dict())
    assert int(fresh.iteration) == 10


def test_first_forward_uses_lambda_at_iteration_zero():
    x = torch.tensor([[1.0, math.sqrt(3.0)]])
    y = torch.tensor([0])
    loss = LargeMarginSoftmax(num_classes=3, embed_dim=2, margin=4, base=1.0, gamma=1.0, power=1.0,
                              lambda_min=0.0, normalize_weights=True)
    _with_weight(loss, [[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # lambda(0) = 1 -> z_0 = -1 (as above); lambda(1) = 1 / 2 -> z_0 = 2 (0.25 - 1.5) / 1.5 = -1.666667.
    assert loss(x, y).item() == pytest.approx(_ce([[-1.0, math.sqrt(3.0), -1.0]], [0]), rel=1e-5)
    assert loss(x, y).item() == pytest.approx(_ce([[-5 / 3, math.sqrt(3.0), -1.0]], [0]), rel=1e-5)


def test_sphereface_and_lsoftmax_defaults():
    sphere = make_loss("sphereface", 3, 2)
    assert sphere.margin == 4 and sphere.normalize_weights
    assert sphere.schedule == {"base": 1000.0, "gamma": 0.12, "power": 1.0, "lambda_min": 5.0}
    lsoft = make_loss("lsoftmax", 3, 2)
    assert lsoft.margin == 2 and not lsoft.normalize_weights
    assert lsoft.schedule == {"base": 1000.0, "gamma": 2e-5, "power": 45.0, "lambda_min": 0.0}
    with pytest.raises(ValueError, match="integer"):
        make_loss("sphereface", 3, 2, margin=1.5)


# --------------------------------------------------------------------------- precision under autocast

@pytest.mark.parametrize("make", [
    lambda: make_loss("arcface", 3, 2),
    lambda: make_loss("cosface", 3, 2),
    lambda: make_loss("normface", 3, 2),
    lambda: make_loss("tvmf", 3, 2),
    lambda: make_loss("sphereface", 3, 2, base=0.0, lambda_min=0.0),
    lambda: make_loss("l2_softmax", 3, 2),
], ids=["arcface", "cosface", "normface", "tvmf", "sphereface", "l2_softmax"])
def test_losses_compute_in_float32_under_bf16_autocast(make):
    """The trainer runs the loss inside bf16 autocast; the cosines and logits must stay float32 there."""
    loss = make()
    if hasattr(loss, "weight"):
        _with_weight(loss)
    loss.eval()  # keeps SphereFace's iteration counter (and so lambda) the same for both calls
    x = torch.tensor([[3.0, 4.001], [-1.0, 0.02], [1.0, 1.003]])
    y = torch.tensor(TARGET)
    reference = loss(x, y).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss(x, y).item()
        assert loss.scores(x).dtype == torch.float32
    assert under_autocast == pytest.approx(reference, rel=1e-6)
