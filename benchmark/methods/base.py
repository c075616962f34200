"""What one cell trains: a network and the objective it is trained with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class Mixed:
    """Targets of a mixed batch (mixup, CutMix): the loss is lam * L(y_a) + (1 - lam) * L(y_b)."""

    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: torch.Tensor  # 0-d, on the device


@dataclass
class MethodContext:
    """What a method may need besides its settings, known when the cell is built."""

    num_classes: int
    in_channels: int
    class_counts: list[int]  # images per class of the cell's training subset
    embeddings: torch.Tensor | None = None  # semantic class embeddings (cosine_semantic, ...)
    teacher: Path | None = None  # the final weights of the cell's teacher (distillation, M2m)
    teacher_settings: dict | None = None
    extra: dict = field(default_factory=dict)


class Method(nn.Module):
    """A model and a loss on its outputs; the base of every training method.

    `objective(x, y)` is the training loss of a normalised batch (y: class indices, or `Mixed` targets
    of a mixed batch, computed from one forward pass); `scores(x)` the (N, C) class scores whose argmax
    is the prediction; `train_batch(x, y, epoch)` may change a batch before the objective (M2m). A loss
    with `uses_features = True` also gets the model's pooled features (OLE). Methods that need more
    than a loss on the model's outputs (an input-gradient penalty, rotated copies of the batch, a
    teacher) subclass this and override what differs. The model and the loss are submodules, so
    `state_dict`, `train()` and `eval()` cover both; `network` is what is called, the model or its
    torch.compile'd form (not a submodule: the state_dict keeps the model's own keys).
    """

    supports_mixing = True  # whether `Mixed` targets (mixup, CutMix) make sense for this method

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.__dict__["network"] = model

    def compile(self) -> None:  # type: ignore[override]
        self.__dict__["network"] = torch.compile(self.model)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(outputs, pooled features or None): features only when the loss asks for them."""
        if getattr(self.loss, "uses_features", False):
            features = self.model.features(x)
            return self.model.head(features), features
        return self.network(x), None

    def loss_of(self, out: torch.Tensor, features: torch.Tensor | None, y) -> torch.Tensor:
        """The loss of outputs `out` against targets `y` (class indices or `Mixed`)."""
        def one(target: torch.Tensor) -> torch.Tensor:
            return self.loss(out, target, features) if features is not None else self.loss(out, target)

        if isinstance(y, Mixed):
            return y.lam * one(y.y_a) + (1.0 - y.lam) * one(y.y_b)
        return one(y)

    def objective(self, x: torch.Tensor, y) -> torch.Tensor:
        out, features = self.outputs(x)
        return self.loss_of(out, features, y)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss.scores(self.outputs(x)[0])

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, epoch: int):  # noqa: ARG002 (hook)
        return x, y

    def parameter_groups(self, optimizer: dict) -> list[dict]:
        """Parameters with their weight decay: the model's (see `model_parameter_groups`), then the loss's own."""
        return [*model_parameter_groups(self.model, optimizer["weight_decay_on"]), *self.loss.parameter_groups()]


def model_parameter_groups(model: nn.Module, decay_on: str) -> list[dict]:
    """The model's parameters with their weight decay.

    "kernels" decays only conv and linear weights (the tensors of 2+ dimensions), not biases or
    BatchNorm scales and shifts: what Keras' kernel_regularizer, used by the official CIFAR ResNets,
    penalises. "all" decays every parameter.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_on == "all":
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
