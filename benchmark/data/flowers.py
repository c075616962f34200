"""Oxford Flowers-102: 102 classes; training = trnid + valid (2,040 images), test = tstid (6,149).

Sources (robots.ox.ac.uk/~vgg/data/flowers/102/): 102flowers.tgz (jpg/image_00001.jpg ...),
imagelabels.mat ('labels': the 1-based class of image k at position k-1) and setid.mat ('trnid',
'valid', 'tstid': 1-based image numbers). The archive is extracted to raw_dir/102flowers/.

As in the paper, the official training and validation sets together form the training pool.
Their union is the official test-free data; `extra["official_val_idx"]` keeps the positions of
the 'valid' images should a validation split be wanted. The source files carry no class names,
so classes are named by their 1-based number ("001" ... "102"). Images are stored in ascending
image number over the three sets.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts

NAME = "flowers"
FACTS = DatasetFacts(classes=102, train=2040, test=6149, min_train_per_class=20)
_BASE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
SOURCES = {
    "102flowers.tgz": {"url": _BASE + "102flowers.tgz", "md5": "52808999861908f626f3c1f4e79d11fa"},
    "imagelabels.mat": {"url": _BASE + "imagelabels.mat", "md5": "e0620be6f572b9609742df49c70aed4d"},
    "setid.mat": {"url": _BASE + "setid.mat", "md5": "a5357ecc9cb78c4bef273ce3793fc85c"},
}
DEFAULT_RESOLUTION = 512


def download(settings: dict) -> dict:
    """Fetch, verify and extract the source files into settings["raw_dir"] (the download stage)."""
    from benchmark.data.sources import obtain, resolve_sources

    return obtain(NAME, resolve_sources(NAME, SOURCES, settings), settings)


def _load_mat(settings: dict, filename: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import scipy.io

    from benchmark.data.sources import raw_dir, require

    path = require(NAME, raw_dir(NAME, settings) / filename)
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise DataError(f"dataset {NAME}: {path} cannot be read as a MATLAB file ({error}); it is damaged: "
                        f"run the download stage again") from None
    out = {}
    for key in keys:
        if key not in mat:
            raise DataError(f"dataset {NAME}: {filename} has no variable {key!r}; it is not the expected file")
        values = np.asarray(mat[key]).ravel()
        ints = np.rint(values.astype(np.float64)).astype(np.int64)
        if values.size and not np.array_equal(ints, values.astype(np.float64)):
            raise DataError(f"dataset {NAME}: {filename} variable {key!r} holds non-integer values")
        out[key] = ints
    return out


def build(settings: dict) -> dict:
    """Return the canonical arrays: images (and sizes, crop "whole"), labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.images import image_settings, load_images
    from benchmark.data.sources import common_extra, extracted

    labels_by_number = _load_mat(settings, "imagelabels.mat", ("labels",))["labels"]
    split = _load_mat(settings, "setid.mat", ("trnid", "valid", "tstid"))
    root = extracted(NAME, settings, "102flowers.tgz") / "jpg"
    train_numbers = np.concatenate([split["trnid"], split["valid"]])
    numbers = np.concatenate([train_numbers, split["tstid"]])
    if np.unique(numbers).size != numbers.size:
        raise DataError(f"dataset {NAME}: setid.mat lists some images in more than one of trnid/valid/tstid")
    if numbers.min() < 1 or numbers.max() > labels_by_number.size:
        raise DataError(f"dataset {NAME}: setid.mat names images up to {numbers.max()}, but imagelabels.mat "
                        f"labels only {labels_by_number.size}")
    order = np.sort(numbers)
    class_ids = labels_by_number[order - 1]
    used = np.unique(class_ids)
    photos = load_images(NAME, [root / f"image_{n:05d}.jpg" for n in order],
                         **image_settings(NAME, settings, DEFAULT_RESOLUTION))
    position = np.searchsorted(order, split["valid"])
    return {
        **photos,
        "labels": np.searchsorted(used, class_ids).astype(np.int64),
        "train_idx": np.searchsorted(order, np.sort(train_numbers)).astype(np.int64),
        "test_idx": np.searchsorted(order, np.sort(split["tstid"])).astype(np.int64),
        "classes": [f"{int(c):03d}" for c in used],
        "extra": {**common_extra(NAME, settings, "Oxford Flowers-102 (102flowers.tgz, imagelabels.mat, "
                                                 "setid.mat); train = trnid + valid, test = tstid"),
                  "official_val_idx": sorted(int(p) for p in position)},
    }
