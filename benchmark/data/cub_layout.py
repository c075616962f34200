"""The CUB-200-2011 file layout, shared by CUB and NABirds: text lists joined by image id.

A root folder holds images.txt ("<id> <relative path>"), image_class_labels.txt ("<id> <class
id>"), train_test_split.txt ("<id> <1 = train, 0 = test>"), classes.txt ("<class id> <name>") and
images/<relative path>. Images keep the order of images.txt; classes are the class ids that label
images, in ascending order (label = position), named from classes.txt.

Kept apart from cub.py so that NABirds' preparation depends on this layout code, not on CUB's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError

DEFAULT_RESOLUTION = 512  # CUB and NABirds: the paper resizes the shorter side to 512


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

    lists = read_lists(name, root)
    used = np.unique(lists["class_ids"])  # leaf classes with images, ascending
    labels = np.searchsorted(used, lists["class_ids"]).astype(np.int64)
    photos = load_images(name, lists["paths"], **image_settings(name, settings, DEFAULT_RESOLUTION))
    return {
        **photos,
        "labels": labels,
        "train_idx": np.flatnonzero(lists["is_train"]).astype(np.int64),
        "test_idx": np.flatnonzero(~lists["is_train"]).astype(np.int64),
        "classes": [lists["class_names"][int(c)] for c in used],
        "extra": {**common_extra(name, settings, description), "class_ids": [int(c) for c in used]},
    }
