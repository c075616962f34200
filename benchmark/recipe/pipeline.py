"""The recipe of one cell, built from its `train.recipe` settings: what the training loop calls.

Only cells whose recipe is on import this package (their spec names it, benchmark/grid.py), so
editing the recipe reruns exactly those cells.
"""

from __future__ import annotations

import torch

from benchmark.augment import random_erasing
from benchmark.methods.base import Mixed
from benchmark.recipe.ema import ModelEMA
from benchmark.recipe.mixing import cutmix, mixup
from benchmark.recipe.trivial_augment import trivial_augment_wide


class Recipe:
    """TrivialAugment on the stored pixels, random erasing, mixup or CutMix, and an EMA of the weights.

    settings (train.recipe, defaults in the schema): trivial_augment (bool), erase {p, area, aspect},
    mixup {alpha} (alpha 0: off), cutmix {p, alpha} (p 0: off; with both on, a batch gets CutMix with
    probability p, else mixup), ema {decay, every} (decay 0: off).
    """

    def __init__(self, settings: dict, method: torch.nn.Module, generator: torch.Generator) -> None:
        self.settings = settings
        self.generator = generator
        ema = settings["ema"]
        self.ema = ModelEMA(method, ema["decay"], ema["every"]) if ema["decay"] > 0 else None

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The stored-dtype batch after cropping, before anything turns it into floats."""
        return trivial_augment_wide(x, self.generator) if self.settings["trivial_augment"] else x

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        erase = self.settings["erase"]
        if erase["p"] <= 0:
            return x
        return random_erasing(x, self.generator, erase["p"], tuple(erase["area"]), tuple(erase["aspect"]))

    def mix(self, x: torch.Tensor, y: torch.Tensor):
        """The normalised batch and its targets: class indices, or `Mixed` after mixup / CutMix."""
        cut, mix = self.settings["cutmix"], self.settings["mixup"]
        if cut["p"] > 0:
            mixed, y_a, y_b, lam = cutmix(x, y, self.generator, p=cut["p"], alpha=cut["alpha"])
            if mix["alpha"] <= 0 or bool(lam < 1):
                return mixed, Mixed(y_a, y_b, lam)
        if mix["alpha"] > 0:
            mixed, y_a, y_b, lam = mixup(x, y, self.generator, alpha=mix["alpha"])
            return mixed, Mixed(y_a, y_b, lam)
        return x, y

    def after_step(self, method: torch.nn.Module) -> None:
        if self.ema is not None:
            self.ema.step(method)

    def evaluated(self, method: torch.nn.Module) -> torch.nn.Module:
        """What validation and test evaluate: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else method

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict() if self.ema is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
