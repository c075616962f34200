"""The strong-baseline training recipe, batched on the device: Mixup, CutMix, TrivialAugment wide, EMA.

Order per training batch (uint8 or float pixels 0..255, (N, C, H, W)): crop/flip as the dataset
says, `trivial_augment_wide`, float, `benchmark.augment.random_erasing`, then `mixup` or `cutmix`;
the loss is lam L(out, y_a) + (1 - lam) L(out, y_b). Evaluate `ModelEMA.module`.
"""

from benchmark.recipe.ema import ModelEMA, adjusted_decay
from benchmark.recipe.mixing import cutmix, mixed_targets, mixup, sample_beta
from benchmark.recipe.trivial_augment import OPS, apply, draw, trivial_augment_wide

__all__ = [
    "OPS",
    "ModelEMA",
    "adjusted_decay",
    "apply",
    "cutmix",
    "draw",
    "mixed_targets",
    "mixup",
    "sample_beta",
    "trivial_augment_wide",
]
