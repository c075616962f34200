"""Long-tailed training subsets: per-class counts from an imbalance profile, drawn as nested prefixes.

Profiles (imbalance factor IF = n_max / n_min, C classes, position i = 0..C-1):
  exponential  n_i = int(n_max (1/IF)^(i / (C - 1)))  (Cui et al., "Class-Balanced Loss Based on
               Effective Number of Samples", CVPR 2019, arXiv 1901.05555; their long-tailed CIFAR)
  step         n_i = n_max for the first floor(C/2) positions, int(n_max / IF) for the rest (Cao et
               al., LDAM-DRW, NeurIPS 2019, arXiv 1906.07413)
Every count is at least 1. Position i is not class i: the classes are put in a permutation seeded
from (dataset, seed), so which classes are rare changes with the seed instead of always being the
last labels. CIFAR-10 with n_max 5000 and IF 100 gives, in permutation order,
[5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] (Cui et al.'s CIFAR-10-LT).

The images of class c are the first counts[c] of the class's seeded order of
`benchmark.data.subsets.class_orders`, the same order the balanced subsets take prefixes of. So for
one seed and factor a long-tailed subset with n_max = 10 contains the one with n_max = 5, and is
contained in the balanced subset of 10 per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.data.subsets import class_orders, stable_seed

PROFILES = ("exponential", "step")


def longtail_order(num_classes: int, dataset: str, seed: int) -> np.ndarray:
    """order[i] = the class at position i of the profile (position 0 gets n_max)."""
    rng = np.random.default_rng(stable_seed("longtail", dataset, seed))
    return rng.permutation(num_classes)


def profile_counts(n_max: int, num_classes: int, factor: float, profile: str) -> list[int]:
    """The counts by position (not by class): non-increasing, first n_max, none below 1."""
    if n_max < 1 or num_classes < 1:
        raise ValueError(f"long-tail n_max and num_classes must be positive, got {n_max} and {num_classes}")
    if factor < 1:
        raise ValueError(f"long-tail imbalance factor must be >= 1 (n_max / n_min), got {factor}")
    if profile == "exponential":
        if num_classes == 1:
            return [int(n_max)]
        # (1/IF)^(i/(C-1)) as Cui et al. write it; int() truncates as their code does.
        counts = [int(n_max * (1.0 / factor) ** (i / (num_classes - 1))) for i in range(num_classes)]
    elif profile == "step":
        head = num_classes // 2
        counts = [int(n_max)] * head + [int(n_max / factor)] * (num_classes - head)
    else:
        raise ValueError(f"unknown long-tail profile {profile!r}; known: {', '.join(PROFILES)}")
    return [max(1, n) for n in counts]


def longtail_counts(n_max: int, num_classes: int, factor: float, profile: str, seed: int, dataset: str) -> list[int]:
    """Images per class (index = class label) of the long-tailed subset of (dataset, seed)."""
    by_position = profile_counts(n_max, num_classes, factor, profile)
    counts = [0] * num_classes
    for position, c in enumerate(longtail_order(num_classes, dataset, seed)):
        counts[int(c)] = by_position[position]
    return counts


def draw_longtail_subset(
    labels: np.ndarray, pool: np.ndarray, counts: Sequence[int], dataset: str, seed: int
) -> np.ndarray:
    """Sorted pool indices: the first counts[c] images of each class c's seeded order."""
    labels = np.asarray(labels)
    pool = np.asarray(pool)
    present = np.unique(labels[pool])
    if present.size and (present.min() < 0 or present.max() >= len(counts)):
        raise ValueError(f"dataset {dataset}: labels in the pool run from {present.min()} to {present.max()}, "
                         f"but {len(counts)} class counts were given")
    # class_orders lists only the classes present in the pool, in label order.
    orders = dict(zip(present.tolist(), class_orders(labels, pool, dataset, seed), strict=True))
    chosen = []
    for c, n in enumerate(counts):
        n = int(n)
        if n < 0:
            raise ValueError(f"dataset {dataset}: class {c} has a negative count {n}")
        have = orders[c].size if c in orders else 0
        if n > have:
            raise ValueError(f"dataset {dataset}: class {c} needs {n} training images for the long-tailed "
                             f"subset but the pool has {have}; lower n_max or raise the imbalance factor")
        if n:
            chosen.append(orders[c][:n])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=pool.dtype)
