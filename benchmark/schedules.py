"""Learning-rate schedules, updated once per epoch (as the paper's official code does)."""

from __future__ import annotations

import math


def cosine(epoch: int, epochs: int, max_lr: float, min_lr: float) -> float:
    """Cosine annealing from max_lr at epoch 0 towards min_lr at the last epoch."""
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / epochs))


def sgdr(epoch: int, max_lr: float, min_lr: float, first_cycle: int, cycle_mult: int = 2) -> float:
    """SGDR (Loshchilov & Hutter 2017) as in the paper's code.

    Within a cycle of length L, at position i (0-based): lr = min + 0.5 (max - min)(1 + cos(pi (i+1) / L)).
    The first cycle lasts `first_cycle` epochs and each next one `cycle_mult` times longer
    (12, 24, 48, ...: restarts after epochs 12, 36, 84, 180 for the paper's values).
    """
    start, length = 0, first_cycle
    while epoch >= start + length:
        start += length
        length *= cycle_mult
    position = epoch - start
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * (position + 1) / length))


def sgdr_epochs(first_cycle: int, cycle_mult: int, cycles: int) -> int:
    """Total epochs of `cycles` SGDR cycles (12, x2, 5 cycles -> 372)."""
    return sum(first_cycle * cycle_mult**k for k in range(cycles))


def learning_rate(epoch: int, epochs: int, max_lr: float, schedule: dict) -> float:
    name = schedule["name"]
    min_lr = schedule.get("min_lr", 0.0)
    if name == "cosine":
        return cosine(epoch, epochs, max_lr, min_lr)
    if name == "sgdr":
        return sgdr(epoch, max_lr, min_lr, schedule["first_cycle"], schedule.get("cycle_mult", 2))
    if name == "constant":
        return max_lr
    raise ValueError(f"unknown schedule {name!r}; use cosine, sgdr or constant")
