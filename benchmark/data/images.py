"""Decoding and resizing the images of the photo datasets into one stacked uint8 array.

The prepared form is one array (N, H, W, 3) (benchmark/data/prepared.py), so images of different
shapes share a canvas. Three ways are offered (dataset setting `crop`):

  - "whole" (default): the official code's view. Its loaders (github.com/cvjena/semantic-embeddings,
    datasets/common.py `_load_image`) resize the SHORTER side to 512 (256 for MIT67), keep the aspect
    ratio and the whole image, and `compose_batch` draws a random 448 x 448 crop anywhere in it (test:
    the centre crop). Here the shorter side becomes `resolution` and the longer side is kept as
    resized, up to `max_aspect` x `resolution` pixels (a longer one keeps its central part: the cap
    bounds memory; the official code has none). Each image sits in the top-left corner of a canvas
    (N, resolution, round(max_aspect * resolution), 3), zero elsewhere; a portrait image (taller than
    wide) is stored transposed, so that every image's long side runs along the canvas' long axis and
    the canvas is only max_aspect times the size of a square store. `sizes` (N, 2) holds each image's
    (height, width) in its own orientation; it is transposed in the canvas exactly when height > width.
    Training crops are drawn within each image's own region and transposed back (benchmark/augment.py).
  - "center": shorter side to `resolution`, then the central `resolution` x `resolution` square
    ("whole" with max_aspect 1: the test view is the same, but random crops cannot reach the longer
    side's borders). No `sizes`: every image fills its square.
  - "pad": the LONGER side to `resolution`, the shorter side padded with black to a square. Nothing is
    lost, but the object is stored smaller and augmentation sees black bars. No `sizes`.

Resampling is Pillow's bilinear filter (antialiased when downscaling; the official code uses
PIL's BILINEAR too) and the resized longer side is rounded as there (round(long * resolution /
short)). EXIF orientation tags are ignored, as in the official loaders. Every image is converted
to RGB (grey, palette, CMYK files exist in these datasets). Decoding runs in a thread pool (Pillow
releases the GIL while decoding and resizing) writing into one preallocated canvas, so memory is
the canvas only; the result does not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError

CROPS = ("whole", "center", "pad")
DEFAULT_CROP = "whole"
DEFAULT_MAX_ASPECT = 1.5  # longer side kept up to 1.5 x the shorter (768 at 512): 3:2 photos whole


def image_settings(name: str, settings: dict, default_resolution: int) -> dict:
    """The keyword arguments of `load_images` (resolution, crop, max_aspect, workers) from a dataset's
    settings, validated."""
    resolution = int(settings.get("resolution", default_resolution))
    crop = settings.get("crop", DEFAULT_CROP)
    max_aspect = float(settings.get("max_aspect", DEFAULT_MAX_ASPECT))
    if resolution < 1:
        raise DataError(f"dataset {name}: resolution must be a positive number of pixels, got {resolution}")
    if crop not in CROPS:
        raise DataError(f"dataset {name}: crop must be one of {CROPS}, got {crop!r}")
    if not max_aspect >= 1.0:
        raise DataError(f"dataset {name}: max_aspect (longer / shorter side kept) must be at least 1, "
                        f"got {max_aspect}")
    workers = int(settings.get("workers") or min(8, os.cpu_count() or 1))
    return {"resolution": resolution, "crop": crop, "max_aspect": max_aspect, "workers": max(1, workers)}


def long_side(resolution: int, max_aspect: float) -> int:
    """The canvas' long side: the most pixels of an image's longer side that are kept."""
    return max(resolution, round(resolution * max_aspect))


def load_image(path: Path, resolution: int, crop: str = DEFAULT_CROP,
               max_aspect: float = DEFAULT_MAX_ASPECT) -> np.ndarray:
    """One image as uint8 (H, W, 3) in its own orientation; see the module docstring for `crop`.

    "whole": min(H, W) = resolution and max(H, W) <= long_side(resolution, max_aspect); "center" and
    "pad": H = W = resolution.
    """
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    if crop == "pad":
        scale = resolution / max(width, height)
        size = (max(1, min(resolution, round(width * scale))), max(1, min(resolution, round(height * scale))))
        canvas = Image.new("RGB", (resolution, resolution))
        canvas.paste(image.resize(size, Image.Resampling.BILINEAR),
                     ((resolution - size[0]) // 2, (resolution - size[1]) // 2))
        return np.asarray(canvas, dtype=np.uint8)
    longest = resolution if crop == "center" else long_side(resolution, max_aspect)
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    kept = (min(size[0], longest), min(size[1], longest))
    if kept != size:  # the central part of the longer side
        left, top = (size[0] - kept[0]) // 2, (size[1] - kept[1]) // 2
        image = image.crop((left, top, left + kept[0], top + kept[1]))
    return np.asarray(image, dtype=np.uint8)


def load_images(name: str, paths: Sequence[Path], resolution: int, crop: str = DEFAULT_CROP,
                max_aspect: float = DEFAULT_MAX_ASPECT, workers: int = 1) -> dict[str, np.ndarray]:
    """All images in one preallocated uint8 canvas: {"images": (N, H, W, 3)}, and for crop "whole" also
    {"sizes": int64 (N, 2)}, each image's (height, width) (layout: module docstring).

    A missing or undecodable file raises a DataError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    whole = crop == "whole"
    width = long_side(resolution, max_aspect) if whole else resolution
    out = np.zeros((len(paths), resolution, width, 3), dtype=np.uint8)
    sizes = np.zeros((len(paths), 2), dtype=np.int64)

    def one(index: int) -> None:
        path = Path(paths[index])
        if not path.is_file():
            raise DataError(
                f"dataset {name}: image {path} is listed by the dataset's annotation files but missing; the "
                f"extraction is incomplete or the archive is not the expected one: delete the raw folder and "
                f"run the download stage again"
            )
        try:
            image = load_image(path, resolution, crop, max_aspect)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
            raise DataError(
                f"dataset {name}: image {path} cannot be decoded ({type(error).__name__}: {error}); the file "
                f"is damaged: delete the raw folder and run the download stage again"
            ) from None
        sizes[index] = image.shape[:2]
        stored = image.transpose(1, 0, 2) if image.shape[0] > image.shape[1] else image
        out[index, :stored.shape[0], :stored.shape[1]] = stored

    if workers <= 1 or len(paths) < 2:
        for index in range(len(paths)):
            one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(one, range(len(paths))):
                pass
    return {"images": out, "sizes": sizes} if whole else {"images": out}
