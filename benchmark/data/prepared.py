"""The canonical prepared form of a dataset, written atomically and loaded once per job.

A prepared dataset is a folder data/prepared/<name>/ holding
  images.npy     uint8, (N, H, W, C)
  labels.npy     int64, (N,)
  train_idx.npy  int64 indices into images: the official training pool
  test_idx.npy   int64 indices: the held-out test set, never used for training or selection
  sizes.npy      int64 (N, 2), only for images of varying shape (the photo datasets' crop "whole",
                 benchmark/data/images.py): image i is (height, width) = sizes[i] in its own
                 orientation and lies in the top-left corner of its canvas images[i], stored
                 transposed when height > width (so its long side runs along the canvas' W); the
                 rest of the canvas is zero. Without it every image fills its (H, W).
  metadata.json  class names, counts, normalisation statistics and the sha256 of every array
Plain .npy files (not .npz) so that the bytes, and hence DVC's hashes, are reproducible.

The photo datasets are large at the paper's resolution (CUB at 512 x 768, the whole image up to
3:2: 11,788 x 512 x 768 x 3 bytes = 13.9 GB), so nothing here makes a widened copy of all images:
the normalisation statistics are computed from per-channel histograms of the uint8 values, a chunk
of images at a time, which is also exact (integer counts) rather than a float sum whose rounding
depends on the order; a canvas' zero padding is taken out of the counts, so they describe the
images only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.io import file_hash, make_staging_dir, swap_in_dir

ARRAYS = ("images", "labels", "train_idx", "test_idx")
OPTIONAL = ("sizes",)  # written (and hashed) only when present
# Pixels per channel histogrammed at once: bounds the temporary copies (about 9 bytes a pixel).
STATS_CHUNK_PIXELS = 1 << 22


@dataclass
class Prepared:
    images: np.ndarray
    labels: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    metadata: dict
    sizes: np.ndarray | None = None  # (N, 2) (height, width) per image, or None: every image fills (H, W)

    @property
    def num_classes(self) -> int:
        return len(self.metadata["classes"])


def write_prepared(
    out_dir: Path,
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    classes: list[str],
    extra: dict | None = None,
    sizes: np.ndarray | None = None,
) -> dict:
    """Write the prepared folder atomically: build it beside `out_dir`, then swap it in.

    A crash leaves either the previous folder or the new one, never a half-written mix. `sizes`: each
    image's (height, width) in its canvas (module docstring), or None when every image fills it.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"dataset {name}: images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    if sizes is not None:
        sizes = check_sizes(name, np.asarray(sizes), images.shape)
    labels = labels.astype(np.int64)
    train_idx = np.sort(train_idx).astype(np.int64)
    test_idx = np.sort(test_idx).astype(np.int64)
    if np.intersect1d(train_idx, test_idx).size:
        raise ValueError(f"dataset {name}: training and test indices overlap")
    train_counts = np.bincount(labels[train_idx], minlength=len(classes))
    mean, std = channel_stats(images, train_idx, sizes=sizes)
    metadata = {
        "name": name,
        "classes": list(classes),
        "image_shape": list(images.shape[1:]),
        "num_train": int(train_idx.size),
        "num_test": int(test_idx.size),
        "train_per_class": train_counts.tolist(),
        "mean": mean,
        "std": std,
        **(extra or {}),
    }
    out_dir = Path(out_dir)
    staging = make_staging_dir(out_dir)
    try:
        arrays = {"images": images, "labels": labels, "train_idx": train_idx, "test_idx": test_idx}
        if sizes is not None:
            arrays["sizes"] = sizes
        for key, array in arrays.items():
            np.save(staging / f"{key}.npy", np.ascontiguousarray(array), allow_pickle=False)
        metadata["sha256"] = {key: file_hash(staging / f"{key}.npy") for key in arrays}
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        swap_in_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return metadata


def check_sizes(name: str, sizes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`sizes` as int64 (N, 2), checked against the canvas shape (N, H, W, C): every image's shorter side
    fits H, its longer side W (a portrait image is stored transposed)."""
    n, height, width = shape[:3]
    if sizes.shape != (n, 2) or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"dataset {name}: sizes must be integers (N, 2) = ({n}, 2), got {sizes.dtype} {sizes.shape}")
    short, long = sizes.min(axis=1), sizes.max(axis=1)
    if n and (short.min() < 1 or short.max() > height or long.max() > width):
        raise ValueError(f"dataset {name}: sizes do not fit the canvas {height} x {width} "
                         f"(shorter sides {short.min()}..{short.max()}, longer up to {long.max()})")
    return sizes.astype(np.int64)


def channel_stats(images: np.ndarray, idx: np.ndarray, chunk_pixels: int = STATS_CHUNK_PIXELS,
                  sizes: np.ndarray | None = None) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images[idx] / 255, rounded to 6 decimals.

    Exact: a histogram of the 256 values per channel is accumulated over chunks of images (only
    one chunk is copied at a time), then the moments are taken from the integer counts in exact
    rational arithmetic and rounded once. The population standard deviation (ddof 0). Peak extra
    memory is about 12 bytes per pixel of one chunk, whatever the dataset's size. With `sizes`
    (module docstring) only each image's own pixels count: its canvas' padding, zeros, is taken off
    the count of the value 0.
    """
    from fractions import Fraction

    channels = images.shape[-1]
    per_image = int(np.prod(images.shape[1:-1], dtype=np.int64))
    step = max(1, chunk_pixels // max(1, per_image))
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, idx.size, step):
        chunk = images[idx[start:start + step]]
        for c in range(channels):
            counts[c] += np.bincount(chunk[..., c].ravel(), minlength=256)
    if sizes is not None:
        counts[:, 0] -= idx.size * per_image - int(np.prod(sizes[idx], axis=1).sum())
    values = np.arange(256, dtype=np.int64)
    mean, std = [], []
    for c in range(channels):
        # Integer moments (exact in int64 far beyond any dataset: sum of squares < n * 65,025).
        n, s1, s2 = int(counts[c].sum()), int(counts[c] @ values), int(counts[c] @ values**2)
        if n == 0:
            mean.append(float("nan"))
            std.append(float("nan"))
            continue
        mu = Fraction(s1, n * 255)
        var = Fraction(n * s2 - s1 * s1, n * n * 255 * 255)
        mean.append(float(np.round(float(mu), 6)))  # numpy's rounding, as these files always had
        std.append(float(np.round(np.sqrt(float(var)), 6)))
    return mean, std


def data_hash(metadata: dict) -> str:
    """One short hash naming the prepared content (recorded as provenance of every cell)."""
    joined = "".join(metadata["sha256"][key] for key in ARRAYS + OPTIONAL if key in metadata["sha256"])
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _fix(folder: Path) -> str:
    return (f"run the workflow (it prepares data through DVC) or `dvc repro --pull` the stage of dvc.yaml that "
            f"writes data/prepared/{folder.name}")


def load_metadata(folder: Path) -> dict:
    """A prepared folder's metadata.json; DataError naming the folder when it is missing or unreadable."""
    from benchmark.data.errors import DataError

    path = Path(folder) / "metadata.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"prepared data not found at {folder}; {_fix(Path(folder))}") from None
    except (OSError, ValueError) as error:
        raise DataError(f"prepared data at {folder} has an unreadable metadata.json ({error}); "
                        f"{_fix(Path(folder))}") from None


def load_prepared(folder: Path) -> Prepared:
    """Read a prepared folder into memory (one copy, moved to the device once by the trainer).

    A missing or unreadable folder is a DataError naming the folder and the fix.
    """
    from benchmark.data.errors import DataError

    folder = Path(folder)
    metadata = load_metadata(folder)
    keys = ARRAYS + tuple(key for key in OPTIONAL if key in metadata.get("sha256", {}))
    try:
        arrays = {key: np.load(folder / f"{key}.npy", allow_pickle=False) for key in keys}
    except (OSError, ValueError) as error:
        raise DataError(f"prepared data at {folder} is incomplete or damaged ({error}); {_fix(folder)}") from None
    return Prepared(metadata=metadata, **arrays)
