"""Decoding and resizing the images of the photo datasets into one stacked uint8 array.

The canonical prepared form is a single array (N, H, W, 3), so every image must end up with the
same size. Two ways are offered (dataset setting `crop`):

  - "center" (default): resize so that the SHORTER side is `resolution` pixels (aspect ratio
    kept), then cut the central `resolution` x `resolution` square. This matches the paper's
    test-time view at the same scale (resize 512, centre crop 448 lies inside this square), but
    for non-square images it loses the borders of the longer side: the paper's training crops
    (random 448 x 448 from the whole resized image, e.g. 683 x 512) can reach regions that are no
    longer stored. Random crops must then be drawn from the stored square.
  - "pad": resize so that the LONGER side is `resolution` pixels and pad the shorter side with
    black to a square. Nothing of the image is lost, but the object is stored smaller (the
    shorter side has fewer than `resolution` pixels) and augmentation sees black bars.

Neither equals the paper's pipeline exactly, which decodes the original file for each crop;
storing full-size images of varying shape is not possible in the (N, H, W, C) prepared form.

Resampling is Pillow's bilinear filter (antialiased when downscaling). EXIF orientation tags are
ignored, as in the paper's loaders. Every image is converted to RGB (grey, palette, CMYK files
exist in these datasets). Decoding runs in a thread pool (Pillow releases the GIL while
decoding and resizing); the result does not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmark.data.errors import DataError

CROPS = ("center", "pad")


def image_settings(name: str, settings: dict, default_resolution: int) -> tuple[int, str, int]:
    """(resolution, crop, workers) from the dataset settings, validated."""
    resolution = int(settings.get("resolution", default_resolution))
    crop = settings.get("crop", "center")
    if resolution < 1:
        raise DataError(f"dataset {name}: resolution must be a positive number of pixels, got {resolution}")
    if crop not in CROPS:
        raise DataError(f"dataset {name}: crop must be one of {CROPS}, got {crop!r}")
    workers = int(settings.get("workers") or min(8, os.cpu_count() or 1))
    return resolution, crop, max(1, workers)


def load_image(path: Path, resolution: int, crop: str = "center") -> np.ndarray:
    """One image as uint8 (resolution, resolution, 3); see the module docstring for `crop`."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    if crop == "center":
        scale = resolution / min(width, height)
        size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
    else:
        scale = resolution / max(width, height)
        size = (max(1, min(resolution, round(width * scale))), max(1, min(resolution, round(height * scale))))
        canvas = Image.new("RGB", (resolution, resolution))
        canvas.paste(image.resize(size, Image.Resampling.BILINEAR),
                     ((resolution - size[0]) // 2, (resolution - size[1]) // 2))
        image = canvas
    return np.asarray(image, dtype=np.uint8)


def load_images(name: str, paths: Sequence[Path], resolution: int, crop: str = "center",
                workers: int = 1) -> np.ndarray:
    """All images stacked into one preallocated uint8 array (N, resolution, resolution, 3).

    A missing or undecodable file raises a DataError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)

    def one(index: int) -> None:
        path = Path(paths[index])
        if not path.is_file():
            raise DataError(
                f"dataset {name}: image {path} is listed by the dataset's annotation files but missing; the "
                f"extraction is incomplete or the archive is not the expected one: delete the raw folder and "
                f"run the download stage again"
            )
        try:
            out[index] = load_image(path, resolution, crop)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
            raise DataError(
                f"dataset {name}: image {path} cannot be decoded ({type(error).__name__}: {error}); the file "
                f"is damaged: delete the raw folder and run the download stage again"
            ) from None

    if workers <= 1 or len(paths) < 2:
        for index in range(len(paths)):
            one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(one, range(len(paths))):
                pass
    return out
