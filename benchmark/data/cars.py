"""Stanford Cars: 196 car models; the official split of 8,144 training and 8,041 test images.

Sources: car_ims.tgz (all 16,185 images as car_ims/000001.jpg ...) and cars_annos.mat, whose
'annotations' struct array has, per image, relative_im_path ("car_ims/000001.jpg"), the bounding
box bbox_x1/y1/x2/y2, class (1-based) and test (1 = test image), and whose 'class_names' lists
the 196 model names. The original links (ai.stanford.edu/~jkrause/car196/) are dead, so both
files are placed by hand in `manual_dir` (default data/manual/cars/), or fetched from a mirror
set under `sources` in the dataset settings; the md5s below are the published ones.

Whole images are used (no bounding-box crop), as in the paper's code. Images keep the order of
the annotations; classes are the class ids that occur, ascending (label = id - 1 for the real
data). The archive is extracted to raw_dir/car_ims/ and relative_im_path is resolved there.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts

NAME = "cars"
FACTS = DatasetFacts(classes=196, train=8144, test=8041, min_train_per_class=24)
_HOW = ("from a mirror of the Stanford Cars dataset (the original http://ai.stanford.edu/~jkrause/car196/ "
        "links are dead)")
SOURCES = {
    "car_ims.tgz": {"url": None, "md5": "d5c8f0aa497503f355e17dc7886c3f14", "how": _HOW},
    "cars_annos.mat": {"url": None, "md5": "b407c6086d669747186bd1d764ff9dbc", "how": _HOW},
}
DEFAULT_RESOLUTION = 512


def download(settings: dict) -> dict:
    """Locate or fetch, verify and extract the two source files into settings["raw_dir"]."""
    from benchmark.data.sources import obtain, resolve_sources

    return obtain(NAME, resolve_sources(NAME, SOURCES, settings), settings)


def read_annotations(settings: dict) -> dict:
    """Paths (relative), class ids and test flags from cars_annos.mat, and the class names."""
    import scipy.io

    from benchmark.data.sources import raw_dir, require

    path = require(NAME, raw_dir(NAME, settings) / "cars_annos.mat", "the annotations")
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True)
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise DataError(f"dataset {NAME}: {path} cannot be read as a MATLAB file ({error}); "
                        f"it is damaged: place or download it again") from None
    for key in ("annotations", "class_names"):
        if key not in mat:
            raise DataError(f"dataset {NAME}: {path.name} has no variable {key!r}; it is not the expected file")
    annotations = np.atleast_1d(mat["annotations"])
    fields = annotations.dtype.names or ()
    for field in ("relative_im_path", "class", "test"):
        if field not in fields:
            raise DataError(f"dataset {NAME}: the 'annotations' of {path.name} have no field {field!r} "
                            f"(fields: {list(fields)}); it is not the expected file")
    return {
        "paths": [str(p) for p in annotations["relative_im_path"]],
        "class_ids": np.asarray([int(c) for c in annotations["class"]], dtype=np.int64),
        "is_test": np.asarray([int(t) for t in annotations["test"]], dtype=np.int64) == 1,
        "class_names": [str(n) for n in np.atleast_1d(mat["class_names"])],
    }


def build(settings: dict) -> dict:
    """Return the canonical arrays: images (and sizes, crop "whole"), labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.images import image_settings, load_images
    from benchmark.data.sources import common_extra, extracted

    annos = read_annotations(settings)
    root = extracted(NAME, settings, "car_ims.tgz")
    used = np.unique(annos["class_ids"])
    if used[0] < 1 or used[-1] > len(annos["class_names"]):
        raise DataError(f"dataset {NAME}: class ids {used[0]}..{used[-1]} in cars_annos.mat do not fit its "
                        f"{len(annos['class_names'])} class names")
    photos = load_images(NAME, [root / p for p in annos["paths"]], **image_settings(NAME, settings, DEFAULT_RESOLUTION))
    return {
        **photos,
        "labels": np.searchsorted(used, annos["class_ids"]).astype(np.int64),
        "train_idx": np.flatnonzero(~annos["is_test"]).astype(np.int64),
        "test_idx": np.flatnonzero(annos["is_test"]).astype(np.int64),
        "classes": [annos["class_names"][int(c) - 1] for c in used],
        "extra": common_extra(NAME, settings, "Stanford Cars (car_ims.tgz, cars_annos.mat), official split, "
                                              "whole images"),
    }
