"""Exponential moving average of a model's weights, evaluated in place of the trained weights.

Polyak averaging with exponential weights, as timm's ModelEmaV2 (decay 0.9998, every step) and
torchvision's classification reference (decay 0.99998, every 32 steps, decay adjusted to the
batch size and epochs) use it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """A frozen copy of a module whose weights follow p_ema <- d p_ema + (1 - d) p every `every` steps.

    Buffers: floating-point buffers (BatchNorm running mean and variance) are averaged with the
    same formula when `average_buffers` (the default, as timm and torchvision do): the running
    statistics then cover the same horizon as the averaged weights they are used with, and the
    figures are comparable with those references. With average_buffers=False they are copied
    from the model. Integer buffers (num_batches_tracked) are always copied.
    Use `module` for validation and test; it stays in eval mode.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, every: int = 1, average_buffers: bool = True) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1], got {decay}")
        if every < 1:
            raise ValueError(f"EMA update interval must be at least 1 step, got {every}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.every = every
        self.average_buffers = average_buffers
        self.steps = 0

    def step(self, model: nn.Module) -> bool:
        """Count one optimiser step; update on every `every`-th. Returns whether it updated."""
        self.steps += 1
        if self.steps % self.every:
            return False
        self.update(model)
        return True

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """p_ema <- d p_ema + (1 - d) p for every parameter (and floating buffer when averaged)."""
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(params):
            raise ValueError("the model does not have the parameters of the averaged copy")
        # lerp(e, p, w) = e + w (p - e) = (1 - w) e + w p, with w = 1 - d; one fused call for all tensors.
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            if self.average_buffers and ema_buffer.is_floating_point():
                ema_buffer.lerp_(buffer, 1.0 - self.decay)
            else:
                ema_buffer.copy_(buffer)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.steps = int(state["steps"])


def adjusted_decay(decay: float, batch_size: int, every: int, epochs: int, world_size: int = 1) -> float:
    """torchvision reference's decay per update: 1 - min(1, (1 - decay) world_size batch_size every / epochs).

    (references/classification/train.py; decay 0.99998, every 32 by default there.)
    """
    return 1.0 - min(1.0, (1.0 - decay) * world_size * batch_size * every / epochs)
