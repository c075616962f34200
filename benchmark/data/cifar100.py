"""CIFAR-100 (python version): 100 classes, 50,000 training and 10,000 test images of 32 x 32.

Source: cifar-100-python.tar.gz (cs.toronto.edu/~kriz), extracted to
raw_dir/cifar-100-python/cifar-100-python/ holding the pickles `train` and `test` (b'data':
(N, 3072) uint8, channel-major: 1024 red, then green, then blue values, rows top to bottom;
b'fine_labels', b'coarse_labels') and `meta` (b'fine_label_names', b'coarse_label_names').
Images are kept at 32 x 32 (the `resolution` setting does not apply), training first, then test.

Setting `test_set: cifair` replaces the test set by ciFAIR-100 (Barz & Denzler, "Do we train on
test data?"), in which the test images with near-duplicates in the training set are replaced.
ciFAIR-100.zip (github.com/cvjena/cifair releases v1.0) extracts to ciFAIR-100/ with `train`,
`test` and `meta` pickles in the CIFAR-100 format (layout as read by the official ciFAIR loaders
in that repository; its training set is CIFAR-100's). Only its `test` is used.

The 20 superclasses of CIFAR-100 are exposed in `extra`: "coarse_classes" (their names) and
"fine_to_coarse" (the superclass of each class), checked to be a function of the class. The
pickles are read with an unpickler that only admits the numpy globals needed for arrays, so a
tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts

NAME = "cifar100"
FACTS = DatasetFacts(classes=100, train=50000, test=10000, min_train_per_class=500)
SOURCES = {
    "cifar-100-python.tar.gz": {"url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                                "md5": "eb9058c3a382ffc7106e4002c42a8d85"},
    "ciFAIR-100.zip": {"url": "https://github.com/cvjena/cifair/releases/download/v1.0/ciFAIR-100.zip",
                       "md5": "ddc236ab4b12eeb8b20b952614861a33"},
}
TEST_SETS = ("cifar", "cifair")

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR pickles: builtin containers and numpy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def _test_set(settings: dict) -> str:
    test_set = settings.get("test_set", "cifar")
    if test_set not in TEST_SETS:
        raise DataError(f"dataset {NAME}: test_set must be one of {TEST_SETS}, got {test_set!r}")
    return test_set


def _needed(settings: dict) -> dict[str, dict]:
    from benchmark.data.sources import resolve_sources

    sources = resolve_sources(NAME, SOURCES, settings)
    if _test_set(settings) != "cifair":
        del sources["ciFAIR-100.zip"]
    return sources


def download(settings: dict) -> dict:
    """Fetch, verify and extract CIFAR-100 (and ciFAIR-100 when `test_set: cifair`) into raw_dir."""
    from benchmark.data.sources import obtain

    return obtain(NAME, _needed(settings), settings)


def load_pickle(path: Path) -> dict[str, object]:
    """A CIFAR pickle as a dict with str keys (the files were written by Python 2: bytes keys)."""
    from benchmark.data.sources import require

    require(NAME, path)
    try:
        with open(path, "rb") as handle:
            raw = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataError(f"dataset {NAME}: {path} cannot be read as a CIFAR pickle ({error}); it is damaged or "
                        f"not the expected file: run the download stage again") from None
    if not isinstance(raw, dict):
        raise DataError(f"dataset {NAME}: {path} does not hold a dict; it is not a CIFAR pickle")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _names(meta: dict, key: str, path: Path) -> list[str]:
    if key not in meta:
        raise DataError(f"dataset {NAME}: {path} has no {key!r}; it is not the CIFAR-100 meta file")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta[key]]


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3), fine and coarse labels of one pickle."""
    batch = load_pickle(path)
    for key in ("data", "fine_labels", "coarse_labels"):
        if key not in batch:
            raise DataError(f"dataset {NAME}: {path} has no {key!r}; it is not a CIFAR-100 pickle")
    data = np.asarray(batch["data"])
    fine = np.asarray(batch["fine_labels"], dtype=np.int64)
    coarse = np.asarray(batch["coarse_labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or not (
            data.shape[0] == fine.size == coarse.size):
        raise DataError(f"dataset {NAME}: {path} holds data {data.dtype} {data.shape} with {fine.size} fine and "
                        f"{coarse.size} coarse labels; expected uint8 (N, 3072) and N of each")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), fine, coarse


def build(settings: dict) -> dict:
    """Return the canonical arrays: images, labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.sources import common_extra, extracted

    test_set = _test_set(settings)
    root = extracted(NAME, settings, "cifar-100-python.tar.gz") / "cifar-100-python"
    meta = load_pickle(root / "meta")
    classes = _names(meta, "fine_label_names", root / "meta")
    coarse_classes = _names(meta, "coarse_label_names", root / "meta")
    train_images, train_fine, train_coarse = _batch(root / "train")
    if test_set == "cifair":
        test_path = extracted(NAME, settings, "ciFAIR-100.zip") / "ciFAIR-100" / "test"
    else:
        test_path = root / "test"
    test_images, test_fine, test_coarse = _batch(test_path)
    fine = np.concatenate([train_fine, test_fine])
    coarse = np.concatenate([train_coarse, test_coarse])
    if fine.min() < 0 or fine.max() >= len(classes) or coarse.min() < 0 or coarse.max() >= len(coarse_classes):
        raise DataError(f"dataset {NAME}: labels outside the {len(classes)} classes / {len(coarse_classes)} "
                        f"superclasses named in meta")
    fine_to_coarse = np.full(len(classes), -1, dtype=np.int64)
    for f, c in set(zip(fine.tolist(), coarse.tolist(), strict=True)):
        if fine_to_coarse[f] not in (-1, c):
            raise DataError(f"dataset {NAME}: class {classes[f]!r} appears under two superclasses")
        fine_to_coarse[f] = c
    n_train = train_fine.size
    description = ("CIFAR-100 python version" if test_set == "cifar"
                   else "CIFAR-100 python version, test set replaced by ciFAIR-100 v1.0")
    return {
        "images": np.concatenate([train_images, test_images]),
        "labels": fine,
        "train_idx": np.arange(n_train, dtype=np.int64),
        "test_idx": np.arange(n_train, fine.size, dtype=np.int64),
        "classes": classes,
        "extra": {**common_extra(NAME, settings, description), "test_set": test_set,
                  "coarse_classes": coarse_classes, "fine_to_coarse": fine_to_coarse.tolist()},
    }
