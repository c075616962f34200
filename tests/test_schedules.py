"""Learning-rate schedules: cosine, SGDR as in the paper's code, and the dispatcher."""

from __future__ import annotations

import math

import pytest

from benchmark.schedules import cosine, learning_rate, sgdr, sgdr_epochs

MAX, MIN = 0.5, 1e-6


def test_cosine_endpoints_and_midpoint():
    assert cosine(0, 100, MAX, MIN) == pytest.approx(MAX)
    assert cosine(100, 100, MAX, MIN) == pytest.approx(MIN)
    assert cosine(50, 100, MAX, MIN) == pytest.approx((MAX + MIN) / 2)
    assert cosine(25, 100, 1.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_cosine_decreases_monotonically():
    lrs = [cosine(e, 30, MAX, MIN) for e in range(31)]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert all(MIN <= lr <= MAX for lr in lrs)


def _sgdr_by_hand(epoch: int, first: int = 12, mult: int = 2) -> float:
    start, length = 0, first
    while epoch >= start + length:
        start, length = start + length, length * mult
    i = epoch - start
    return MIN + 0.5 * (MAX - MIN) * (1 + math.cos(math.pi * (i + 1) / length))


def test_sgdr_formula_first_cycles_written_out():
    # First cycle, L = 12: epoch i -> min + 0.5 (max - min)(1 + cos(pi (i + 1) / 12)).
    for i in range(12):
        want = MIN + 0.5 * (MAX - MIN) * (1 + math.cos(math.pi * (i + 1) / 12))
        assert sgdr(i, MAX, MIN, 12) == pytest.approx(want)
    # Second cycle, L = 24, starts at epoch 12.
    for i in range(24):
        want = MIN + 0.5 * (MAX - MIN) * (1 + math.cos(math.pi * (i + 1) / 24))
        assert sgdr(12 + i, MAX, MIN, 12) == pytest.approx(want)
    # Third cycle, L = 48, starts at epoch 36.
    assert sgdr(36, MAX, MIN, 12) == pytest.approx(MIN + 0.5 * (MAX - MIN) * (1 + math.cos(math.pi / 48)))
    # Each cycle ends exactly at min_lr.
    for last in (11, 35, 83, 179, 371):
        assert sgdr(last, MAX, MIN, 12) == pytest.approx(MIN, abs=1e-12)


def test_sgdr_all_epochs_match_hand_formula():
    for epoch in range(400):
        assert sgdr(epoch, MAX, MIN, 12) == pytest.approx(_sgdr_by_hand(epoch), rel=1e-12, abs=1e-15), epoch
    assert sgdr(5, MAX, MIN, 4, cycle_mult=3) == pytest.approx(_sgdr_by_hand(5, first=4, mult=3))


def test_sgdr_restarts_exactly_after_epochs_12_36_84_180():
    lrs = [sgdr(e, MAX, MIN, 12) for e in range(372)]
    restarts = [e for e in range(1, 372) if lrs[e] > lrs[e - 1]]
    assert restarts == [12, 36, 84, 180]
    # Otherwise the rate never increases, and it stays within [min, max].
    assert all(MIN - 1e-12 <= lr <= MAX for lr in lrs)


def test_sgdr_epochs():
    assert sgdr_epochs(12, 2, 5) == 372
    assert sgdr_epochs(12, 2, 1) == 12
    assert sgdr_epochs(10, 1, 3) == 30
    assert sgdr_epochs(2, 3, 3) == 2 + 6 + 18


def test_learning_rate_dispatch():
    assert learning_rate(3, 10, 0.2, {"name": "constant"}) == 0.2
    with_min = learning_rate(3, 10, 0.2, {"name": "cosine", "min_lr": 0.01})
    assert with_min == pytest.approx(cosine(3, 10, 0.2, 0.01))
    assert learning_rate(3, 10, 0.2, {"name": "cosine"}) == pytest.approx(cosine(3, 10, 0.2, 0.0))
    assert learning_rate(0, 10, 0.2, {"name": "cosine"}) == pytest.approx(0.2)
    sched = {"name": "sgdr", "first_cycle": 12, "min_lr": MIN}
    assert learning_rate(40, 372, MAX, sched) == pytest.approx(sgdr(40, MAX, MIN, 12, 2))
    sched3 = {"name": "sgdr", "first_cycle": 4, "cycle_mult": 3}
    assert learning_rate(5, 100, MAX, sched3) == pytest.approx(sgdr(5, MAX, 0.0, 4, 3))
    # cycle_mult 3 differs from the default 2 at epoch 13 (4 + 12 vs 4 + 8 + 16 boundaries).
    doubling = learning_rate(13, 100, MAX, {**sched3, "cycle_mult": 2})
    assert learning_rate(13, 100, MAX, sched3) != pytest.approx(doubling)


def test_learning_rate_unknown_schedule():
    with pytest.raises(ValueError, match="'step'"):
        learning_rate(0, 10, 0.1, {"name": "step"})
