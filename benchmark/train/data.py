"""The cell's data on its device: images moved there once, batches indexed and augmented there.

The whole prepared dataset goes to the device once as uint8; each step indexes a batch from it,
augments it there (benchmark/augment.py) and normalises it. Images of varying shape (the photo
datasets stored whole, benchmark/data/prepared.py `sizes`) carry their regions of the canvas to the
crops. Batch order comes from one seeded generator whose state a checkpoint saves, so a resumed cell
draws the same batches.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from benchmark.augment import Regions, augment, eval_view
from benchmark.data.errors import DataError
from benchmark.data.prepared import Prepared, load_prepared


class DeviceData:
    """Prepared images (uint8) and labels on the device, with per-channel normalisation constants."""

    def __init__(self, prepared: Prepared, device: torch.device) -> None:
        self.images = torch.from_numpy(prepared.images).to(device)  # uint8 (N, H, W, C)
        self.labels = torch.from_numpy(prepared.labels).to(device)
        meta = prepared.metadata
        self.mean = torch.tensor(meta["mean"], device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(meta["std"], device=device).clamp_min(1e-6).view(1, -1, 1, 1) * 255.0
        self.name = meta.get("name", "(unnamed)")
        self.regions, self.shortest = None, min(prepared.images.shape[1:3])
        if prepared.sizes is not None:  # (height, width) each; transposed in the canvas when taller than wide
            sizes = torch.from_numpy(prepared.sizes).to(device)
            height, width = sizes.unbind(1)
            self.regions = Regions(torch.minimum(height, width), torch.maximum(height, width), height > width)
            self.shortest = int(prepared.sizes.min()) if prepared.sizes.size else 0

    def batch_regions(self, idx: torch.Tensor, aug: dict) -> Regions | None:
        """The regions of the images `idx` in their canvas (None: each fills it), once the view is checked:
        images of varying shape need a crop, and no image may be smaller than it."""
        crop = aug.get("crop")
        if self.regions is not None and not crop:
            raise DataError(f"dataset {self.name} is stored as whole images of varying shape (crop: whole in "
                            f"config/datasets.yaml); set dataset_settings.{self.name}.augment.crop to a size that "
                            f"fits them (at most {self.shortest})")
        if crop and crop > self.shortest:
            raise DataError(f"augment crop {crop} is larger than the shortest side {self.shortest} of dataset "
                            f"{self.name}'s images; lower dataset_settings.{self.name}.augment.crop or prepare the "
                            f"data at a larger resolution")
        return self.regions[idx] if self.regions is not None else None

    def pixels(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) of the images `idx` (a permuted view; augmentation gathers from it)."""
        return self.images[idx].permute(0, 3, 1, 2)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def train_batch(self, idx: torch.Tensor, aug: dict, generator: torch.Generator,
                    memory_format: torch.memory_format, recipe=None):
        """The normalised, augmented training batch of the images `idx` and its targets (class indices, or
        `Mixed` ones when the recipe mixes)."""
        x = augment(self.pixels(idx), aug, generator, recipe, self.batch_regions(idx, aug))
        x = self.normalise(x).contiguous(memory_format=memory_format)
        y = self.labels[idx]
        return recipe.mix(x, y) if recipe is not None else (x, y)

    def eval_batches(self, idx: np.ndarray, aug: dict, batch_size: int, memory_format: torch.memory_format):
        """The images `idx` as seen at test time (centre crop, no augmentation), in batches."""
        idx_t = torch.from_numpy(idx).to(self.images.device)
        for chunk in idx_t.split(batch_size):
            x = eval_view(self.pixels(chunk), aug, self.batch_regions(chunk, aug))
            yield self.normalise(x).contiguous(memory_format=memory_format)


def load_data(data_dir: Path, device: torch.device) -> tuple[Prepared, DeviceData]:
    """The prepared dataset, read and moved to the device once per process (packed cells share it)."""
    return _load_data(Path(data_dir), device, (Path(data_dir) / "metadata.json").stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _load_data(data_dir: Path, device: torch.device, version: int) -> tuple[Prepared, DeviceData]:  # noqa: ARG001
    prepared = load_prepared(data_dir)
    return prepared, DeviceData(prepared, device)


class BatchStream:
    """Endless batches over repeated, freshly shuffled passes through `subset`; its state can be saved."""

    def __init__(self, subset: np.ndarray, batch_size: int, generator: torch.Generator, device: torch.device):
        self.subset = torch.from_numpy(subset)
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self.buffer = torch.empty(0, dtype=torch.int64)

    def __next__(self) -> torch.Tensor:
        while self.buffer.numel() < self.batch_size:
            order = torch.randperm(self.subset.numel(), generator=self.generator)
            self.buffer = torch.cat([self.buffer, self.subset[order]])
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size:]
        return batch.to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {"buffer": self.buffer.clone(), "generator": self.generator.get_state()}

    def restore(self, state: dict) -> None:
        self.buffer = state["buffer"]
        self.generator.set_state(state["generator"])


def steps_per_epoch(train: dict, pool_size: int, subset_size: int, samples_per_class: int | str) -> int:
    """Optimisation steps per epoch, from train.steps_per_epoch:

    - `auto`: the full training pool / batch size, the same for every samples-per-class value (small
      subsets are repeated);
    - `official`: the official code's count (github.com/cvjena/semantic-embeddings: datasets/__init__.py
      sets train_repeats = 30 // X for CUB sub-sampled to X per class; its DataSequence in
      datasets/common.py has repeats * ceil(n / batch) batches per epoch): ceil(subset / batch) times
      max(1, 30 // X), once for `all`. CUB at batch 96: 66 / 63 / 42 / 63 steps for X = 5 / 10 / 20 /
      all. Our batches are always full, where the official last batch of each repeat is partial. The
      max(1, ...) is ours: the official code sub-sampled only up to 30 per class;
    - a number: that many.

    `subset_size` is the number of images the cell trains on (its subset less any validation split).
    """
    value = train["steps_per_epoch"]
    if value == "auto":
        return math.ceil(pool_size / train["batch_size"])
    if value == "official":
        repeats = 1 if samples_per_class == "all" else max(1, 30 // int(samples_per_class))
        return repeats * math.ceil(subset_size / train["batch_size"])
    return int(value)
