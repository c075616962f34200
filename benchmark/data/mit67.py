"""MIT Indoor 67: 67 indoor scene classes; the official split of 5,360 training / 1,340 test images.

Sources (web.mit.edu/torralba/www/indoor.html): indoorCVPR_09.tar (Images/<class>/<file>, about
15,600 images, extracted to raw_dir/indoorCVPR_09/) and the split lists TrainImages.txt and
TestImages.txt, one "<class>/<file>.jpg" per line. Only listed images are used.

No checksum is published for these files. The download stage therefore cannot verify them; it
records the md5 and sha256 of what it received in raw_dir/sources.json (with
"md5_published": false), which also reaches metadata.json, and DVC pins the downloaded bytes in
dvc.lock. To verify later downloads, copy the recorded md5 into the dataset settings:
`sources: {indoorCVPR_09.tar: {md5: ...}}`.

Classes are the class folders named in the two lists, sorted; images are stored training list
first, then test list, each in file order. Some files of the archive are GIF or greyscale
images under a .jpg name; they are decoded by content and converted to RGB.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts

NAME = "mit67"
FACTS = DatasetFacts(classes=67, train=5360, test=1340, min_train_per_class=77)
SOURCES = {
    "indoorCVPR_09.tar": {"url": "http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",
                          "md5": None},
    "TrainImages.txt": {"url": "http://web.mit.edu/torralba/www/TrainImages.txt", "md5": None},
    "TestImages.txt": {"url": "http://web.mit.edu/torralba/www/TestImages.txt", "md5": None},
}
DEFAULT_RESOLUTION = 256  # the official code: shorter side 256, 224 crops (datasets/subdirectory.py defaults)


def download(settings: dict) -> dict:
    """Fetch and extract the source files into settings["raw_dir"], recording their checksums."""
    from benchmark.data.sources import obtain, resolve_sources

    return obtain(NAME, resolve_sources(NAME, SOURCES, settings), settings)


def _read_list(settings: dict, filename: str) -> list[str]:
    from benchmark.data.sources import raw_dir, require

    path = require(NAME, raw_dir(NAME, settings) / filename, "the official split list")
    entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for entry in entries:
        parts = Path(entry).parts
        if len(parts) != 2 or ".." in parts or entry.startswith("/"):
            raise DataError(f"dataset {NAME}: {filename} has the line {entry!r}; expected '<class>/<file>'")
    return entries


def build(settings: dict) -> dict:
    """Return the canonical arrays: images (and sizes, crop "whole"), labels, train_idx, test_idx, classes, extra."""
    from benchmark.data.images import image_settings, load_images
    from benchmark.data.sources import common_extra, extracted

    train, test = _read_list(settings, "TrainImages.txt"), _read_list(settings, "TestImages.txt")
    both = train + test
    if len(set(both)) != len(both):
        repeated = sorted(e for e, n in Counter(both).items() if n > 1)[:5]
        raise DataError(f"dataset {NAME}: images listed twice in TrainImages.txt/TestImages.txt: {repeated}")
    root = extracted(NAME, settings, "indoorCVPR_09.tar") / "Images"
    classes = sorted({Path(e).parts[0] for e in both})
    index = {name: i for i, name in enumerate(classes)}
    photos = load_images(NAME, [root / e for e in both], **image_settings(NAME, settings, DEFAULT_RESOLUTION))
    return {
        **photos,
        "labels": np.asarray([index[Path(e).parts[0]] for e in both], dtype=np.int64),
        "train_idx": np.arange(len(train), dtype=np.int64),
        "test_idx": np.arange(len(train), len(both), dtype=np.int64),
        "classes": classes,
        "extra": common_extra(NAME, settings, "MIT Indoor 67 (indoorCVPR_09.tar, TrainImages.txt, "
                                              "TestImages.txt), official split"),
    }
