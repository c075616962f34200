"""An honest validation split, carved out of the training subset a cell trains on.

The paper's official protocol has none (its learning rates and best epochs were chosen on the
test set). With `train.validation_fraction` f > 0, each class with n images in the cell's
training subset gives `validation_count(n, f)` = round(f n) of them (half rounds up), never
all: at least one image per class stays in training. The choice is seeded by (dataset, seed,
class) only, so every loss of one (dataset, samples per class, seed) trains and validates on
the same images (paired comparisons). The test set is used once, after training.

Imported by benchmark.config (the Snakefile), so numpy is imported only where arrays are split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def validation_count(n: int, fraction: float) -> int:
    """Images of a class with n training images held out for validation: round(f n), at most n - 1."""
    return min(n - 1, int(fraction * n + 0.5))


def validation_split(
    labels: np.ndarray, subset: np.ndarray, fraction: float, dataset: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) of `subset`, both sorted; fraction 0 gives no validation."""
    import numpy as np

    from benchmark.data.subsets import stable_seed

    if fraction == 0:
        return np.sort(subset), subset[:0]
    train, val = [], []
    for c in np.unique(labels[subset]):
        members = np.sort(subset[labels[subset] == c])
        order = np.random.default_rng(stable_seed("validation", dataset, seed, int(c))).permutation(members)
        k = validation_count(members.size, fraction)
        val.append(order[:k])
        train.append(order[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
