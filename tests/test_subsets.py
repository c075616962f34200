"""Samples-per-class subsets: deterministic, nested, stratified; and the digits split itself."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data import digits
from benchmark.data.subsets import ALL, draw_subset

# A synthetic dataset: 4 classes of 9, 11, 13 and 17 images, shuffled; 5 images are held out of the
# pool (a "test set"), leaving 8, 10, 12 and 15 per class, so the smallest class in the pool has 8.
LABELS = np.random.default_rng(123).permutation(np.repeat(np.arange(4), [9, 11, 13, 17]))
HELD_OUT = np.concatenate([np.flatnonzero(np.equal(LABELS, c))[:1] for c in range(4)]
                          + [np.flatnonzero(np.equal(LABELS, 3))[1:2]])
POOL = np.setdiff1d(np.arange(LABELS.size), HELD_OUT)
POOL_COUNTS = np.bincount(LABELS[POOL], minlength=4)  # 8, 10, 12, 15


def test_synthetic_fixture_is_what_the_tests_assume():
    assert POOL_COUNTS.tolist() == [8, 10, 12, 15]


def _draw(n, seed=0, dataset="toy", pool=POOL, labels=LABELS):
    return draw_subset(labels, pool, n, dataset, seed)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_stratified_exactly_n_per_class_from_the_pool(n):
    subset = _draw(n)
    assert subset.dtype.kind == "i"
    assert np.unique(subset).size == subset.size == 4 * n
    assert np.isin(subset, POOL).all()
    assert not np.isin(subset, HELD_OUT).any()
    assert np.bincount(LABELS[subset], minlength=4).tolist() == [n] * 4
    assert (np.diff(subset) > 0).all()  # returned sorted


def test_deterministic():
    for n in (1, 5, 8, ALL):
        first = _draw(n, seed=7)
        second = _draw(n, seed=7)
        np.testing.assert_array_equal(first, second)
    # Also independent of the order the pool is given in.
    np.testing.assert_array_equal(_draw(5, seed=7, pool=POOL[::-1].copy()), _draw(5, seed=7))


@pytest.mark.parametrize("seed", [0, 1, 2, 17])
def test_nested_across_samples_per_class(seed):
    labels = np.repeat(np.arange(3), [25, 30, 40])
    pool = np.arange(labels.size)
    s5, s10, s20 = (draw_subset(labels, pool, n, "nest", seed) for n in (5, 10, 20))
    everything = draw_subset(labels, pool, ALL, "nest", seed)
    assert set(s5) < set(s10) < set(s20) < set(everything)
    assert (s5.size, s10.size, s20.size, everything.size) == (15, 30, 60, 95)


def test_different_seeds_give_different_subsets():
    subsets = [tuple(_draw(3, seed=s)) for s in range(6)]
    assert len(set(subsets)) == len(subsets)
    # Per class too: the seed changes each class's order, not only some classes'.
    a, b = _draw(3, seed=0), _draw(3, seed=1)
    differing = [c for c in range(4) if set(a[LABELS[a] == c]) != set(b[LABELS[b] == c])]
    assert len(differing) >= 3
    # The dataset name is part of the seed as well.
    assert not np.array_equal(_draw(3, dataset="toy"), _draw(3, dataset="other"))


def test_all_returns_the_whole_pool():
    np.testing.assert_array_equal(_draw(ALL), np.sort(POOL))
    np.testing.assert_array_equal(_draw("all", seed=5), np.sort(POOL))


def test_n_equal_to_smallest_class_takes_it_whole():
    subset = _draw(8)
    smallest_class = np.sort(POOL[LABELS[POOL] == 0])
    np.testing.assert_array_equal(np.sort(subset[LABELS[subset] == 0]), smallest_class)


def test_too_many_per_class_names_dataset_and_limit():
    with pytest.raises(ValueError) as info:
        _draw(9, dataset="toyset")
    message = str(info.value)
    assert "toyset" in message
    assert "at most 8" in message
    assert "9" in message


@pytest.mark.parametrize("n", [0, -1, -20])
def test_non_positive_raises(n):
    with pytest.raises(ValueError, match="positive"):
        _draw(n)


# --------------------------------------------------------------------------- the real digits data

@pytest.fixture(scope="module")
def digits_arrays():
    return digits.build({"split_seed": 0, "test_per_class": 50})


def test_digits_split_matches_facts(digits_arrays):
    d = digits_arrays
    labels, train, test = d["labels"], d["train_idx"], d["test_idx"]
    facts = digits.FACTS
    assert d["images"].shape == (1797, 8, 8, 1) and d["images"].dtype == np.uint8
    assert d["images"].max() == 255 and d["images"].min() == 0
    assert len(d["classes"]) == facts.classes == 10
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).tolist() == list(range(labels.size))
    assert np.bincount(labels[test], minlength=10).tolist() == [50] * 10
    assert train.size == facts.train and test.size == facts.test
    assert np.bincount(labels[train], minlength=10).min() == facts.min_train_per_class
    facts.check("digits", len(d["classes"]), train.size, test.size,
                int(np.bincount(labels[train], minlength=10).min()))


def test_digits_split_is_seeded():
    a = digits.build({"split_seed": 0, "test_per_class": 50})["test_idx"]
    b = digits.build({"split_seed": 0, "test_per_class": 50})["test_idx"]
    c = digits.build({"split_seed": 1, "test_per_class": 50})["test_idx"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_digits_subsets(digits_arrays):
    labels, pool = digits_arrays["labels"], digits_arrays["train_idx"]
    limit = digits.FACTS.min_train_per_class
    s5 = draw_subset(labels, pool, 5, "digits", 0)
    s50 = draw_subset(labels, pool, 50, "digits", 0)
    s_max = draw_subset(labels, pool, limit, "digits", 0)
    assert np.bincount(labels[s5], minlength=10).tolist() == [5] * 10
    assert np.bincount(labels[s_max], minlength=10).tolist() == [limit] * 10
    assert set(s5) < set(s50) < set(s_max) <= set(pool)
    assert not np.isin(s_max, digits_arrays["test_idx"]).any()
    np.testing.assert_array_equal(draw_subset(labels, pool, ALL, "digits", 0), pool)
    with pytest.raises(ValueError) as info:
        draw_subset(labels, pool, limit + 1, "digits", 0)
    assert "digits" in str(info.value) and f"at most {limit}" in str(info.value)
