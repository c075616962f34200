"""Samples-per-class subsets of the training pool: deterministic, nested and stratified.

For a seed, every class's training indices are put in one seeded order; the subset of n per
class is the first n of each order. So the n=10 subset contains the n=5 one, and every loss
and samples-per-class value of one seed sees the same images (paired comparisons).
"""

from __future__ import annotations

import hashlib

import numpy as np

ALL = "all"


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across runs, machines and Python versions."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def class_orders(labels: np.ndarray, pool: np.ndarray, dataset: str, seed: int) -> list[np.ndarray]:
    """Each class's pool indices in the seeded order the subsets take prefixes of."""
    orders = []
    for c in np.unique(labels[pool]):
        members = np.sort(pool[labels[pool] == c])
        rng = np.random.default_rng(stable_seed("subset", dataset, seed, int(c)))
        orders.append(rng.permutation(members))
    return orders


def draw_subset(
    labels: np.ndarray, pool: np.ndarray, samples_per_class: int | str, dataset: str, seed: int
) -> np.ndarray:
    """Indices of `samples_per_class` training images per class (all of them for "all")."""
    orders = class_orders(labels, pool, dataset, seed)
    if samples_per_class == ALL:
        return np.sort(np.concatenate(orders))
    n = int(samples_per_class)
    if n <= 0:
        raise ValueError(f"samples per class must be positive or 'all', got {samples_per_class!r}")
    smallest = min(order.size for order in orders)
    if n > smallest:
        raise ValueError(
            f"dataset {dataset}: {n} samples per class requested but the smallest class has "
            f"{smallest} training images; use at most {smallest} or 'all'"
        )
    return np.sort(np.concatenate([order[:n] for order in orders]))
