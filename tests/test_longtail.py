"""Long-tailed subsets: profile counts by hand, the seeded class permutation, nesting, errors."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data.longtail import draw_longtail_subset, longtail_counts, longtail_order, profile_counts
from benchmark.data.subsets import draw_subset

# Cui et al.'s CIFAR-10-LT, IF 100, n_max 5000: n_i = int(5000 * 0.01^(i/9)).
#   i=1: 0.01^(1/9) = 0.59948 -> 2997.4 -> 2997;  i=2: 0.35938 -> 1796.9 -> 1796;
#   i=3: 0.21544 -> 1077.2 -> 1077;  i=4: 0.12915 -> 645.7 -> 645;  i=5: 0.07743 -> 387.2 -> 387;
#   i=6: 0.04642 -> 232.1 -> 232;  i=7: 0.02783 -> 139.1 -> 139;  i=8: 0.01668 -> 83.4 -> 83;  i=9: 50.
CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_exponential_profile_matches_cifar10_lt():
    assert profile_counts(5000, 10, 100, "exponential") == CIFAR10_LT_100


def test_exponential_profile_small_cases_by_hand():
    # C = 3, IF 4, n_max 8: 8 * (1/4)^(0, 1/2, 1) = 8, 4, 2.
    assert profile_counts(8, 3, 4, "exponential") == [8, 4, 2]
    # IF 1 is balanced; one class is just n_max.
    assert profile_counts(7, 4, 1, "exponential") == [7, 7, 7, 7]
    assert profile_counts(7, 1, 10, "exponential") == [7]
    # n_max 5, IF 100: 5 * 0.01^(i/2) = 5, 0.5, 0.05 -> int 5, 0, 0 -> at least 1.
    assert profile_counts(5, 3, 100, "exponential") == [5, 1, 1]


def test_step_profile_by_hand():
    # First C//2 positions n_max, the rest int(n_max / IF): 5000 / 100 = 50; 7 / 2 = 3.5 -> 3.
    assert profile_counts(5000, 10, 100, "step") == [5000] * 5 + [50] * 5
    assert profile_counts(7, 5, 2, "step") == [7, 7, 3, 3, 3]
    assert profile_counts(5, 4, 100, "step") == [5, 5, 1, 1]


def test_bad_profile_and_factor():
    with pytest.raises(ValueError, match="profile"):
        profile_counts(10, 4, 10, "linear")
    with pytest.raises(ValueError, match="factor"):
        profile_counts(10, 4, 0.5, "step")


def test_counts_are_indexed_by_class_through_the_seeded_permutation():
    counts = longtail_counts(5000, 10, 100, "exponential", seed=0, dataset="cifar10")
    order = longtail_order(10, "cifar10", 0)
    assert sorted(order.tolist()) == list(range(10))
    assert [counts[c] for c in order] == CIFAR10_LT_100
    # The permutation is not the identity for this seed: indexing by position would be a bug.
    assert counts != CIFAR10_LT_100
    assert counts[int(order[0])] == 5000 and counts[int(order[-1])] == 50


def test_permutation_depends_on_seed_and_dataset_and_is_deterministic():
    first = longtail_counts(5000, 10, 100, "exponential", seed=3, dataset="cifar10")
    assert first == longtail_counts(5000, 10, 100, "exponential", seed=3, dataset="cifar10")
    by_seed = {tuple(longtail_counts(5000, 10, 100, "exponential", seed=s, dataset="cifar10")) for s in range(6)}
    assert len(by_seed) == 6
    other = longtail_counts(5000, 10, 100, "exponential", seed=3, dataset="cifar100")
    assert other != first and sorted(other) == sorted(first)


# A pool of 4 classes with 20, 20, 20, 30 images, shuffled, plus 6 held-out images.
LABELS = np.random.default_rng(5).permutation(np.repeat(np.arange(4), [22, 21, 23, 30]))
HELD_OUT = np.concatenate([np.flatnonzero(np.equal(LABELS, c))[: [2, 1, 3, 0][c]] for c in range(4)])
POOL = np.setdiff1d(np.arange(LABELS.size), HELD_OUT)


def test_fixture_pool_counts():
    assert np.bincount(LABELS[POOL], minlength=4).tolist() == [20, 20, 20, 30]


def test_draw_gives_each_class_its_count_from_the_pool():
    counts = [3, 20, 1, 7]
    subset = draw_longtail_subset(LABELS, POOL, counts, "toy", 0)
    assert np.bincount(LABELS[subset], minlength=4).tolist() == counts
    assert np.isin(subset, POOL).all() and not np.isin(subset, HELD_OUT).any()
    assert (np.diff(subset) > 0).all()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_nested_across_n_max_and_inside_the_balanced_subset(seed):
    small = longtail_counts(5, 4, 5, "exponential", seed, "toy")
    large = longtail_counts(10, 4, 5, "exponential", seed, "toy")
    assert all(s <= n for s, n in zip(small, large, strict=True)) and small != large
    s5 = draw_longtail_subset(LABELS, POOL, small, "toy", seed)
    s10 = draw_longtail_subset(LABELS, POOL, large, "toy", seed)
    assert set(s5) < set(s10)
    # Same per-class order as the balanced subsets: the LT subset of n_max 10 lies in the 10-per-class one.
    assert set(s10) <= set(draw_subset(LABELS, POOL, 10, "toy", seed))


def test_draw_is_deterministic_and_seeded():
    counts = [5, 5, 5, 5]
    a = draw_longtail_subset(LABELS, POOL, counts, "toy", 4)
    np.testing.assert_array_equal(a, draw_longtail_subset(LABELS, POOL[::-1].copy(), counts, "toy", 4))
    assert not np.array_equal(a, draw_longtail_subset(LABELS, POOL, counts, "toy", 5))


def test_class_missing_from_the_pool_does_not_shift_the_others():
    pool = POOL[LABELS[POOL] != 1]
    subset = draw_longtail_subset(LABELS, pool, [2, 0, 4, 6], "toy", 0)
    assert np.bincount(LABELS[subset], minlength=4).tolist() == [2, 0, 4, 6]
    with pytest.raises(ValueError, match=r"class 1 needs 1 .* the pool has 0"):
        draw_longtail_subset(LABELS, pool, [2, 1, 4, 6], "toy", 0)


def test_too_many_requested_names_class_and_numbers():
    with pytest.raises(ValueError, match=r"dataset toy: class 3 needs 31 .* the pool has 30"):
        draw_longtail_subset(LABELS, POOL, [1, 1, 1, 31], "toy", 0)
    with pytest.raises(ValueError, match="3 class counts were given"):
        draw_longtail_subset(LABELS, POOL, [1, 1, 1], "toy", 0)
