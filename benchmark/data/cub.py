"""CUB-200-2011: 200 bird species, the official split of 5,994 training and 5,794 test images.

Source: CUB_200_2011.tgz (data.caltech.edu record 65de6-vp158), extracted to
raw_dir/CUB_200_2011/CUB_200_2011/ holding images.txt ("<id> <class dir>/<file>.jpg"),
image_class_labels.txt ("<id> <class id>"), train_test_split.txt ("<id> <1 = train, 0 = test>"),
classes.txt ("<class id> <name>") and images/<class dir>/<file>.jpg.

Images keep the order of images.txt. Classes are the class ids that label images, in ascending
order (label = position); names come from classes.txt. NABirds uses the same layout and reuses
`read_lists`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts

NAME = "cub"
FACTS = DatasetFacts(classes=200, train=5994, test=5794, min_train_per_class=29)
SOURCES = {
    "CUB_200_2011.tgz": {
        "url": "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
        "md5": "97eceeb196236b17998738112f37df78",
    },
}
DEFAULT_RESOLUTION = 512


def download(settings: dict) -> dict:
    """Fetch, verify and extract the source files into settings["raw_dir"] (the download stage)."""
    from benchmark.data.sources import obtain, resolve_sources

    return obtain(NAME, resolve_sources(NAME, SOURCES, settings), settings)


def read_lists(name: str, root: Path) -> dict:
    """The CUB/NABirds text lists joined by image id: paths, class ids, train flags, class names.

    Returns {"paths": [...], "class_ids": int array, "is_train": bool array, "class_names": {id: name}}
    in images.txt order; a DataError names any file that is missing or inconsistent.
    """
    from benchmark.data.sources import read_table

    images = read_table(name, root / "images.txt", 2)
    labels = dict(read_table(name, root / "image_class_labels.txt", 2))
    split = dict(read_table(name, root / "train_test_split.txt", 2))
    class_names = {}
    for class_id, class_name in read_table(name, root / "classes.txt", 2):
        class_names[_int(name, "classes.txt", class_id)] = class_name
    paths, class_ids, is_train = [], [], []
    for image_id, relative in images:
        if image_id not in labels:
            raise DataError(f"dataset {name}: image id {image_id} of images.txt has no line in "
                            f"image_class_labels.txt; the annotation files do not match")
        if image_id not in split:
            raise DataError(f"dataset {name}: image id {image_id} of images.txt has no line in "
                            f"train_test_split.txt; the annotation files do not match")
        if split[image_id] not in ("0", "1"):
            raise DataError(f"dataset {name}: train_test_split.txt gives {split[image_id]!r} for image "
                            f"{image_id}; expected 1 (train) or 0 (test)")
        paths.append(root / "images" / relative)
        class_ids.append(_int(name, "image_class_labels.txt", labels[image_id]))
        is_train.append(split[image_id] == "1")
    missing = sorted(set(class_ids) - set(class_names))
    if missing:
        raise DataError(f"dataset {name}: class ids {missing[:10]} label images but are not in classes.txt")
    return {"paths": paths, "class_ids": np.asarray(class_ids, dtype=np.int64),
            "is_train": np.asarray(is_train, dtype=bool), "class_names": class_names}


def _int(name: str, filename: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"dataset {name}: {filename} holds {value!r} where a class id is expected") from None


def build_from_lists(name: str, root: Path, settings: dict, description: str) -> dict:
    """The canonical arrays of a dataset in the CUB layout under `root` (CUB and NABirds)."""
    from benchmark.data.images import image_settings, load_images
    from benchmark.data.sources import common_extra

    resolution, crop, workers = image_settings(name, settings, DEFAULT_RESOLUTION)
    lists = read_lists(name, root)
    used = np.unique(lists["class_ids"])  # leaf classes with images, ascending
    labels = np.searchsorted(used, lists["class_ids"]).astype(np.int64)
    images = load_images(name, lists["paths"], resolution, crop, workers)
    return {
        "images": images,
        "labels": labels,
        "train_idx": np.flatnonzero(lists["is_train"]).astype(np.int64),
        "test_idx": np.flatnonzero(~lists["is_train"]).astype(np.int64),
        "classes": [lists["class_names"][int(c)] for c in used],
        "extra": {**common_extra(name, settings, description), "class_ids": [int(c) for c in used]},
    }


def build(settings: dict) -> dict:
    """Return the canonical arrays: images, labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.sources import extracted

    root = extracted(NAME, settings, "CUB_200_2011.tgz") / "CUB_200_2011"
    return build_from_lists(NAME, root, settings, "CUB-200-2011 (CUB_200_2011.tgz), official split")
