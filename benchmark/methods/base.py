"""What one cell trains: a network and the objective it is trained with."""

from __future__ import annotations

import torch
from torch import nn


class Method(nn.Module):
    """A model and a loss on its outputs; the base of every training method.

    `objective(x, y)` is the training loss of a normalised batch, `scores(x)` the (N, C) class scores
    whose argmax is the prediction. Methods that need more than a loss on the model's outputs (an
    input-gradient penalty, rotated copies of the batch, a teacher) override these two. The model and
    the loss are submodules, so `state_dict`, `train()` and `eval()` cover both; `network` is what is
    called, the model itself or its torch.compile'd form (not a submodule: the state_dict keeps the
    model's own keys).
    """

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.__dict__["network"] = model

    def compile(self) -> None:  # type: ignore[override]
        self.__dict__["network"] = torch.compile(self.model)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(self.network(x), y)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss.scores(self.network(x))

    def parameter_groups(self, optimizer: dict) -> list[dict]:
        """Parameters with their weight decay: the model's (see `model_parameter_groups`), then the loss's own."""
        return [*model_parameter_groups(self.model, optimizer["weight_decay_on"]), *self.loss.parameter_groups()]


def model_parameter_groups(model: nn.Module, decay_on: str) -> list[dict]:
    """The model's parameters with their weight decay.

    "kernels" decays only conv and linear weights (the tensors of 2+ dimensions), not biases or
    BatchNorm scales and shifts: what Keras' kernel_regularizer, used by the official CIFAR ResNets,
    penalises. "all" decays every parameter.
    """
    params = list(model.parameters())
    if decay_on == "all":
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
