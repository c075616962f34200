"""M2m (Kim, Jeong, Shin, CVPR 2020): acceptance and seed probabilities by hand, the translation
step on linear toy classifiers, and end-to-end acceptance rates on 2-D "images"."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.tensors import assert_close

from benchmark.methods.m2m import (
    acceptance_probability,
    generate,
    random_start,
    replace_accepted,
    replacement_mask,
    seed_class_distribution,
    translate,
)

N = [20, 10, 3]
BETA = 0.9
# 1 - 0.9^(N_k0 - N_k)+:  0 -> 2: 1 - 0.9^17 = 1 - 0.16677 = 0.83323;  1 -> 2: 1 - 0.9^7 = 1 - 0.47830 = 0.52170;
# 0 -> 1: 1 - 0.9^10 = 1 - 0.34868 = 0.65132;  a seed class not larger than the target: 0.
P_02, P_12, P_01 = 1 - 0.9**17, 1 - 0.9**7, 1 - 0.9**10


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_acceptance_probability_by_hand():
    assert pytest.approx([0.83323, 0.52170, 0.65132], abs=1e-5) == [P_02, P_12, P_01]
    seed = torch.tensor([20.0, 10.0, 20.0, 3.0, 10.0])
    target = torch.tensor([3.0, 3.0, 10.0, 20.0, 10.0])
    got = acceptance_probability(seed, target, BETA).tolist()
    assert got == pytest.approx([P_02, P_12, P_01, 0.0, 0.0], abs=1e-6)


def test_seed_class_distribution_by_hand():
    q = seed_class_distribution(N, BETA)
    # Target 2: [0.83323, 0.52170, 0] / 1.35493 = [0.61496, 0.38504, 0]; target 1: only class 0; target 0: none.
    assert q[2].tolist() == pytest.approx([0.61496, 0.38504, 0.0], abs=1e-5)
    assert q[1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert q[0].tolist() == [0.0, 0.0, 0.0]
    # With 1, 3, 5 seed samples per class in the batch: [0.83323, 3 * 0.52170, 0] / 2.39833 = [0.34742, 0.65258, 0].
    weighted = seed_class_distribution(N, BETA, batch_class_counts=[1, 3, 5])
    assert weighted[2].tolist() == pytest.approx([0.34742, 0.65258, 0.0], abs=1e-5)


def test_replacement_rate_is_one_minus_n_over_n_max():
    # Replace with probability 1 - N_k / 20: class 0 never, class 1 half, class 2 0.85.
    targets = torch.arange(3).repeat_interleave(20000)
    picked = replacement_mask(targets, N, _gen(0)).float().view(3, -1).mean(dim=1)
    assert picked[0].item() == 0.0
    assert picked[1:].tolist() == pytest.approx([0.5, 0.85], abs=0.015)


def test_random_start_is_per_image_l2_ball_and_clamped():
    x = torch.full((6, 3, 4, 4), 0.5)
    moved = random_start(x, _gen(1))
    # 48 uniform pixels have a norm of about sqrt(48 / 12) = 2 > 0.5: every image lands exactly on the ball.
    norms = (moved - x).flatten(1).norm(dim=1)
    assert norms.tolist() == pytest.approx([0.5] * 6, abs=1e-5)
    # Two pixels: norm at most sqrt(2) / 2 = 0.707; those already inside 0.5 are not scaled up.
    small = random_start(torch.full((2000, 2), 0.5), _gen(2)) - 0.5
    assert small.norm(dim=1).max().item() <= 0.5 + 1e-6
    assert (small.norm(dim=1) < 0.45).float().mean().item() > 0.5
    corner = random_start(torch.ones(50, 3, 4, 4), _gen(3))
    assert corner.max().item() == 1.0 and corner.min().item() >= 0.5


def _linear_g(scale: float):
    """Two classes on (N, 1, 1, 2) "images": logits [0, scale (x_1 - 0.5)]; softmax_1 = sigmoid(scale (x_1 - 0.5))."""
    def g(x: torch.Tensor) -> torch.Tensor:
        x1 = x.flatten(1)[:, 0]
        return torch.stack([torch.zeros_like(x1), scale * (x1 - 0.5)], dim=1)
    return g


def _seed_logit_f(direction: tuple[float, float]):
    """f_0(x) = <direction, x>, f_1 = 0."""
    v = torch.tensor(direction)

    def f(x: torch.Tensor) -> torch.Tensor:
        z0 = x.flatten(1) @ v
        return torch.stack([z0, torch.zeros_like(z0)], dim=1)
    return f


def test_translation_steps_are_eta_per_image_along_the_gradient():
    # grad_x CE(g(x), 1) = -(1 - p) * 4 * e1 and grad_x f_0 = -e1: both point along -e1, so each step
    # moves x_1 by exactly eta = 0.1 (per-image normalisation, whatever 1 - p is), x_2 stays; clamp at 1.
    start = torch.tensor([[0.0, 0.2], [0.3, 0.9], [0.75, 0.5], [0.95, 0.1]]).view(4, 1, 1, 2)
    k0, k = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    out = translate(_linear_g(4.0), _seed_logit_f((-1.0, 0.0)), start, k0, k, steps=3, step_size=0.1, lam=0.5)
    # x_1: 0 + 0.3, 0.3 + 0.3, 0.75 + 0.3 -> 1 (clamped), 0.95 -> 1 at the first step.
    assert out.view(4, 2)[:, 0].tolist() == pytest.approx([0.3, 0.6, 1.0, 1.0], abs=1e-6)
    assert out.view(4, 2)[:, 1].tolist() == pytest.approx([0.2, 0.9, 0.5, 0.1], abs=1e-6)
    assert not out.requires_grad


def test_seed_logit_term_is_minimised():
    # Zero logits from g: CE gives no gradient, only lam * f_0 acts. f_0 = <(3, 4), x>: x moves along
    # -(3, 4)/5 by eta per step (a wrong sign would move it towards +(3, 4)).
    def g0(x):
        return torch.zeros(x.shape[0], 2) + 0.0 * x.flatten(1)[:, :1]

    start = torch.full((1, 1, 1, 2), 0.5)
    out = translate(g0, _seed_logit_f((3.0, 4.0)), start, torch.tensor([0]), torch.tensor([1]), steps=2,
                    step_size=0.1, lam=0.5)
    assert out.view(2).tolist() == pytest.approx([0.5 - 0.2 * 0.6, 0.5 - 0.2 * 0.8], abs=1e-6)


def test_seed_choice_follows_q_and_p_accept_is_per_pair():
    # 100 / 300 / 2000 samples of classes 0 / 1 / 2, no translation (steps 0), g uninformative.
    # Shuffled, and each image carries its own position (x_2 = position / 10^4) to trace the seeds.
    targets = torch.arange(3).repeat_interleave(torch.tensor([100, 300, 2000]))[torch.randperm(2400, generator=_gen(4))]
    images = torch.stack([targets / 10, torch.arange(2400) / 1e4], dim=1)
    def g(x):
        return torch.zeros(x.shape[0], 3)
    out = generate(g, g, images, targets, N, _gen(5), beta=BETA, steps=0, noise_radius=0.0)
    counts = torch.tensor(N)
    assert (counts[out.seed_classes] > counts[out.targets]).all()     # seeds only from larger classes
    assert (out.targets == targets[out.index]).all()
    assert (out.targets > 0).all()                                     # class 0 is never replaced
    # Target 2, seed classes weighted by batch presence: Q = [0.34742, 0.65258] (by hand above).
    seeds_for_2 = out.seed_classes[out.targets == 2]
    assert (seeds_for_2 == 0).float().mean().item() == pytest.approx(0.34742, abs=0.05)
    assert (out.seed_classes[out.targets == 1] == 0).all()
    expected_p = acceptance_probability(counts[out.seed_classes].double(), counts[out.targets].double(), BETA)
    assert_close(out.p_accept, expected_p)
    assert not out.accepted.any()  # confidence 1/3 < gamma 0.99
    # The seed images are batch samples of the drawn seed class, spread over that class's samples.
    source = (out.images[:, 1] * 1e4).round().long()
    assert (targets[source] == out.seed_classes).all()
    assert source[out.seed_classes == 1].unique().numel() > 250  # ~1100 draws over 300 samples


def _two_class_batch():
    # Class 0 (N = 100): 100 seeds at x_1 = i / 200 (0 .. 0.495), x_2 = 0.5. Class 1 (N = 30): 4000 samples.
    seeds = torch.stack([torch.arange(100) / 200, torch.full((100,), 0.5)], dim=1)
    minority = torch.rand(4000, 2, generator=_gen(6)) * 0.2 + 0.8
    images = torch.cat([seeds, minority]).view(-1, 1, 1, 2)
    targets = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(4000, dtype=torch.long)])
    return images, targets


def test_end_to_end_acceptance_rate_matches_the_rule():
    images, targets = _two_class_batch()
    g, f = _linear_g(10.0), _seed_logit_f((-1.0, 0.0))
    out = generate(g, f, images, targets, [100, 30], _gen(7), beta=0.99, gamma=0.9, steps=5, noise_radius=0.0)
    # Class-1 samples are replaced with probability 1 - 30/100 = 0.7.
    assert out.index.numel() / 4000 == pytest.approx(0.7, abs=0.03)
    # No random start: x_1* = x_1 + 5 * 0.1. softmax_1 = sigmoid(10 (x_1* - 0.5)) >= 0.9 iff
    # x_1* >= 0.5 + ln 9 / 10 = 0.71972 iff x_1 >= 0.21972 iff i >= 44: 56 of the 100 seeds.
    x1 = out.images.view(-1, 2)[:, 0]
    seed_x1 = x1 - 0.5
    assert ((seed_x1 * 200).round() - seed_x1 * 200).abs().max().item() < 1e-3  # started on a seed
    confident = x1 >= 0.5 + math.log(9) / 10
    assert confident.float().mean().item() == pytest.approx(0.56, abs=0.04)
    # Bernoulli p = 1 - 0.99^(100 - 30) = 1 - 0.49484 = 0.50516; acceptance = confident AND Bernoulli.
    p = 1 - 0.99**70
    assert out.p_accept.tolist() == pytest.approx([p] * out.index.numel())
    assert not (out.accepted & ~confident).any()
    assert out.accepted[confident].float().mean().item() == pytest.approx(p, abs=0.05)
    assert out.accepted.float().mean().item() == pytest.approx(0.56 * p, abs=0.04)
    # Every accepted sample is classified by g as its target.
    assert (g(out.images[out.accepted]).argmax(1) == 1).all()


def test_end_to_end_with_random_start_is_deterministic_and_replaces_only_accepted():
    images, targets = _two_class_batch()
    g, f = _linear_g(10.0), _seed_logit_f((-1.0, 0.0))
    first = generate(g, f, images, targets, [100, 30], _gen(8), beta=0.99, gamma=0.9, steps=5)
    again = generate(g, f, images, targets, [100, 30], _gen(8), beta=0.99, gamma=0.9, steps=5)
    assert_close(first.images, again.images)
    assert torch.equal(first.accepted, again.accepted)
    confident = torch.softmax(g(first.images), 1)[:, 1] >= 0.9
    assert not (first.accepted & ~confident).any()
    assert first.accepted[confident].float().mean().item() == pytest.approx(1 - 0.99**70, abs=0.06)
    batch = replace_accepted(images, first)
    changed = (batch != images).flatten(1).any(dim=1)
    replaced = torch.zeros(images.shape[0], dtype=torch.bool)
    replaced[first.index[first.accepted]] = True
    assert torch.equal(changed, replaced)
    # Rejected and unpicked positions keep the original over-sampled images.
    assert_close(batch[~replaced], images[~replaced])


def test_balanced_counts_generate_nothing():
    images, targets = _two_class_batch()
    g = _linear_g(1.0)
    out = generate(g, g, images, targets, [50, 50], _gen(9))
    assert out.index.numel() == 0 and out.images.shape == (0, 1, 1, 2)
    assert_close(replace_accepted(images, out), images)
