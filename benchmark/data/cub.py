"""CUB-200-2011: 200 bird species, the official split of 5,994 training and 5,794 test images.

Source: CUB_200_2011.tgz (data.caltech.edu record 65de6-vp158), extracted to
raw_dir/CUB_200_2011/CUB_200_2011/ holding images.txt ("<id> <class dir>/<file>.jpg"),
image_class_labels.txt ("<id> <class id>"), train_test_split.txt ("<id> <1 = train, 0 = test>"),
classes.txt ("<class id> <name>") and images/<class dir>/<file>.jpg.

Images keep the order of images.txt. Classes are the class ids that label images, in ascending
order (label = position); names come from classes.txt. NABirds uses the same layout: both are read
by benchmark/data/cub_layout.py.
"""

from __future__ import annotations

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


def build(settings: dict) -> dict:
    """Return the canonical arrays: images (and sizes, crop "whole"), labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.cub_layout import build_from_lists
    from benchmark.data.sources import extracted

    root = extracted(NAME, settings, "CUB_200_2011.tgz") / "CUB_200_2011"
    return build_from_lists(NAME, root, settings, "CUB-200-2011 (CUB_200_2011.tgz), official split")
