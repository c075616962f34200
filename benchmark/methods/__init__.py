"""Training methods: what a cell trains (benchmark/methods/base.py).

A method registered in benchmark/registry.py is either a loss on the model's outputs (a
benchmark.losses.base.Loss subclass, which `Method` pairs with the model) or a `Method` subclass of
its own (a classmethod `build(settings, context, make_model)`) for methods that need more than that.
The cell's spec names its method's and model's classes ("module:attribute"), so building a method
imports only what that cell uses.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from benchmark.methods.base import Method, MethodContext, Mixed
from benchmark.targets import load

__all__ = ["Method", "MethodContext", "Mixed", "build_method", "load_class_embeddings"]


EMBEDDINGS = "benchmark.hierarchy:load_embeddings"  # named in the spec of semantic cells only (benchmark/grid.py)


def load_class_embeddings(path: str):
    """The cached semantic class embeddings (written by `python -m benchmark embed`) and their sidecar."""
    import torch

    emb, meta = load(EMBEDDINGS)(path)
    return torch.from_numpy(emb).float(), meta


def model_factory(settings: dict, in_channels: int) -> Callable[[int], nn.Module]:
    """A function output_dim -> a new, randomly initialised model of the cell's model class."""
    constructor = load(settings["model_target"])
    return lambda output_dim: constructor(in_channels=in_channels, output_dim=output_dim)


def build_method(settings: dict, context: MethodContext) -> Method:
    """The cell's method. For a loss: the loss first, then the model (the order fixes the random
    initialisation); the model outputs what the loss asks for: the class embeddings' size, the `embed_dim`
    setting of a loss that owns its class weights (the margin losses: the model outputs features), or
    `output_dim` (the number of classes)."""
    cls = load(settings["method_target"])
    make_model = model_factory(settings, context.in_channels)
    if isinstance(cls, type) and issubclass(cls, Method):
        return cls.build(settings["method"], context, make_model)
    args = dict(settings["method"])
    if context.embeddings is not None:
        args["class_embeddings"] = context.embeddings
        embed_dim = context.embeddings.shape[1]
    elif "embed_dim" in args:
        embed_dim = args.pop("embed_dim")
    else:
        embed_dim = cls.output_dim(context.num_classes)
    if getattr(cls, "needs_class_counts", False):
        args["class_counts"] = context.class_counts
    loss = cls(num_classes=context.num_classes, embed_dim=embed_dim, **args)
    return Method(make_model(embed_dim), loss)
