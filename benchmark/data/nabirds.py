"""NABirds: the 555 leaf classes that label images; official split of 23,929 / 24,633 images.

Source: nabirds.tar.gz from dl.allaboutbirds.org/nabirds, behind a terms-of-use form, so it is
not downloaded: place it by hand in the dataset's `manual_dir` (default data/manual/nabirds/),
or set a mirror URL under `sources` in the dataset settings. It is extracted to
raw_dir/nabirds/nabirds/ in the CUB layout (images.txt, image_class_labels.txt,
train_test_split.txt, classes.txt, images/<class id>/<file>.jpg), with image ids that are UUIDs.
classes.txt lists every node of the taxonomy (hierarchy.txt holds the "child parent" pairs);
the classes used are the ids that label images (555 leaves), in ascending order, as in the
official code of the paper. `extra["class_ids"]` keeps the NABirds id of each label for mapping
a hierarchy onto the labels.
"""

from __future__ import annotations

from benchmark.data.facts import DatasetFacts

NAME = "nabirds"
FACTS = DatasetFacts(classes=555, train=23929, test=24633, min_train_per_class=4)
SOURCES = {
    "nabirds.tar.gz": {
        "url": None,
        "md5": "df21a9e4db349a14e2b08adfd45873bd",
        "how": "from https://dl.allaboutbirds.org/nabirds after accepting the terms of use",
    },
}
DEFAULT_RESOLUTION = 512


def download(settings: dict) -> dict:
    """Locate (or fetch from a configured mirror), verify and extract nabirds.tar.gz into raw_dir."""
    from benchmark.data.sources import obtain, resolve_sources

    return obtain(NAME, resolve_sources(NAME, SOURCES, settings), settings)


def build(settings: dict) -> dict:
    """Return the canonical arrays: images (and sizes, crop "whole"), labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.cub_layout import build_from_lists
    from benchmark.data.sources import extracted

    root = extracted(NAME, settings, "nabirds.tar.gz") / "nabirds"
    return build_from_lists(NAME, root, settings, "NABirds (nabirds.tar.gz), official split, leaf classes")
