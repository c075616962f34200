"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset.

1,797 images of 10 classes, 4-bit grey levels (0..16) stored as uint8 0..255. The test set is
a fixed, seeded, stratified hold-out of `test_per_class` images per class, drawn once at
preparation time; everything else is the training pool the subsets are drawn from.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.facts import DatasetFacts

# With the default 50 test images per class (class sizes 174 to 183).
FACTS = DatasetFacts(classes=10, train=1297, test=500, min_train_per_class=124)


def build(settings: dict) -> dict:
    """Return the canonical arrays: images, labels, train_idx, test_idx, classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = bunch.images  # float64 in 0..16
    images = np.rint(grey * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(settings["split_seed"])
    test = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        test.append(rng.permutation(members)[: settings["test_per_class"]])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return {
        "images": images,
        "labels": labels,
        "train_idx": train_idx,
        "test_idx": test_idx,
        "classes": [str(c) for c in range(10)],
        "extra": {"source": "sklearn.datasets.load_digits", **settings},
    }
