"""The validation split carved out of a cell's training subset: the counting rule, stratification,
determinism, pairing across losses, and the config errors that guard it."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from benchmark.config import REPO_ROOT, ConfigError, load_config, validate
from benchmark.data.subsets import draw_subset
from benchmark.validation import validation_count, validation_split


@pytest.mark.parametrize("n,fraction,expected", [
    (5, 0.2, 1), (10, 0.2, 2), (30, 0.2, 6), (2, 0.2, 0), (3, 0.2, 1),  # 0.6 rounds up
    (4, 0.125, 1),                                                        # 0.5 rounds up
    (2, 0.5, 1), (2, 0.9, 1), (1, 0.5, 0),                                # at least one image stays
    (100, 0.0, 0),
])
def test_validation_count_rounds_half_up_and_keeps_one(n, fraction, expected):
    assert validation_count(n, fraction) == expected


def _labels(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def test_split_is_stratified_disjoint_and_covers_the_subset():
    labels = _labels([7, 12, 3, 30])
    subset = np.arange(labels.size)[::1]
    train, val = validation_split(labels, subset, 0.25, "toy", 0)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), subset)
    assert np.array_equal(train, np.sort(train)) and np.array_equal(val, np.sort(val))
    for c, n in enumerate([7, 12, 3, 30]):
        assert (labels[val] == c).sum() == validation_count(n, 0.25)  # 2, 3, 1, 8
        assert (labels[train] == c).sum() >= 1


def test_split_is_seeded_deterministic_and_independent_of_the_loss():
    labels = _labels([20] * 5)
    pool = np.arange(labels.size)
    subset = draw_subset(labels, pool, 10, "toy", 3)
    a = validation_split(labels, subset, 0.2, "toy", 3)
    b = validation_split(labels, subset, 0.2, "toy", 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other_seed = validation_split(labels, subset, 0.2, "toy", 4)
    assert not np.array_equal(a[1], other_seed[1])
    # The loss is not an input: every loss of (dataset, spc, seed) trains and validates on the same images.
    assert set(validation_split.__code__.co_varnames[:5]) == {"labels", "subset", "fraction", "dataset", "seed"}


def test_zero_fraction_keeps_the_whole_subset():
    labels = _labels([4, 4])
    subset = np.array([6, 0, 3, 5])
    train, val = validation_split(labels, subset, 0.0, "toy", 0)
    assert train.tolist() == [0, 3, 5, 6] and val.size == 0


@pytest.fixture
def config() -> dict:
    return copy.deepcopy(load_config(REPO_ROOT / "config" / "config.yaml"))


def test_config_accepts_a_validation_split_with_selection(config):
    config["train"].update(validation_fraction=0.2, select="best_val", patience=3)
    validate(config)


@pytest.mark.parametrize("changes,needles", [
    ({"validation_fraction": 0.05}, ["train.validation_fraction", "0.05", "5 training images", "0.1"]),
    ({"select": "best_val"}, ["train.select", "'best_val'", "validation_fraction"]),
    ({"patience": 5}, ["train.patience", "validation_fraction"]),
])
def test_config_errors_for_validation(config, changes, needles):
    config["train"].update(changes)
    with pytest.raises(ConfigError) as info:
        validate(config)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_config_error_when_classes_have_one_image(config):
    config["samples_per_class"] = [1, 5]
    config["train"]["validation_fraction"] = 0.5
    with pytest.raises(ConfigError, match="classes of one image"):
        validate(config)
