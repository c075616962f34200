"""Throughput of the batched recipe augmentations against torchvision's per-sample transforms.

    .venv/bin/python scripts/bench_recipe.py [--seconds 3.6] [--batch-size 128] [--device cpu|cuda] [--threads 1]

Both sides augment the same 32x32x3 uint8 images in batches of the same size:
- batched (benchmark.recipe on the device): trivial_augment_wide, float, random_erasing (p 0.5),
  then mixup or cutmix (p 1) on the whole batch;
- per sample (the usual pipeline): a Dataset applying torchvision.transforms.v2 TrivialAugmentWide,
  float, RandomErasing (p 0.5, the same area and aspect ranges) to one image, a DataLoader with
  num_workers 0 and 2 batching them, then mixup by hand on the batch (moved to the device).
The settings take turns for --rounds rounds after one warm-up batch each, --seconds per setting in
all; the best round counts (the machine may be shared). Printed: images/s and the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from benchmark.augment import random_erasing
from benchmark.recipe.mixing import cutmix, mixup
from benchmark.recipe.trivial_augment import trivial_augment_wide

ERASE_AREA, ERASE_ASPECT = (0.02, 0.3), (0.3, 3.33)  # the paper's random erasing (the schema's defaults)


class PerSample(Dataset):
    """One image at a time through torchvision's TrivialAugmentWide and RandomErasing."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.augment = v2.TrivialAugmentWide()
        self.erase = v2.RandomErasing(p=0.5, scale=ERASE_AREA, ratio=ERASE_ASPECT, value=0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.erase(self.augment(self.images[i]).float()), self.labels[i]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Callable[[], int], seconds: float, device: torch.device) -> float:
    """Images per second of repeated step() calls (each returns its image count) over about `seconds`."""
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        done += step()
    _sync(device)
    return done / (time.perf_counter() - began)


def batched(images: torch.Tensor, labels: torch.Tensor, batch_size: int, mix: str) -> Callable[[], int]:
    """One batch through the batched pipeline per call; images and labels already on the device."""
    generator = torch.Generator(device=images.device).manual_seed(0)
    batches = itertools.cycle(range(0, len(images) - batch_size + 1, batch_size))

    def step() -> int:
        start = next(batches)
        x = trivial_augment_wide(images[start:start + batch_size], generator).float()
        x = random_erasing(x, generator, 0.5, ERASE_AREA, ERASE_ASPECT)
        y = labels[start:start + batch_size]
        mixup(x, y, generator) if mix == "mixup" else cutmix(x, y, generator, p=1.0)
        return batch_size

    return step


def per_sample(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, workers: int, device: torch.device
) -> Callable[[], int]:
    """One batch from the DataLoader pipeline per call, mixup by hand on the device."""
    loader = DataLoader(PerSample(images, labels), batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=True, persistent_workers=workers > 0)
    rng = np.random.default_rng(0)
    batches = iter(loader)

    def step() -> int:
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        x, y = x.to(device), y.to(device)
        lam = float(rng.beta(1.0, 1.0))
        perm = torch.randperm(len(x), device=device)
        _ = lam * x + (1 - lam) * x[perm], y, y[perm], lam
        return len(x)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.6, help="per setting, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="settings take turns; the best round counts")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads of this process (DataLoader workers use 1 each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 100, (args.images,), generator=generator)

    settings = {f"batched on {device}, TA + erasing + {mix}":
                batched(images.to(device), labels.to(device), args.batch_size, mix) for mix in ("mixup", "cutmix")}
    for workers in (0, 2):
        settings[f"per sample, torchvision v2, DataLoader num_workers {workers}, mixup"] = per_sample(
            images, labels, args.batch_size, workers, device)
    for step in settings.values():  # warm-up: first calls, worker start-up
        step()
    best = dict.fromkeys(settings, 0.0)
    for _ in range(args.rounds):
        for name, step in settings.items():
            time.sleep(0.5)  # let the 2 workers refill their prefetch queue before the next setting is timed
            best[name] = max(best[name], _rate(step, args.seconds / args.rounds, device))
    reference = [best[name] for name in settings if name.startswith("per sample")]

    print(f"32x32x3 uint8, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"best of {args.rounds} rounds of {args.seconds / args.rounds:.1f} s\n")
    print("| pipeline | images/s | vs per sample, 0 workers | vs per sample, 2 workers |\n|---|---:|---:|---:|")
    for name, rate in best.items():
        print(f"| {name} | {rate:,.0f} | {rate / reference[0]:.1f}x | {rate / reference[1]:.1f}x |")


if __name__ == "__main__":
    main()
