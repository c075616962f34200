"""Training methods: what a cell trains (benchmark/methods/base.py).

A method registered in benchmark/registry.py is either a loss on the model's outputs (a
benchmark.losses.base.Loss subclass, paired with the model by `Method`) or a `Method` subclass of its
own for methods that need more than that. The cell's spec names its method's and model's classes
("module:attribute"), so building a method imports only what that cell uses.
"""

from __future__ import annotations

from benchmark.methods.base import Method
from benchmark.registry import load


def load_class_embeddings(path: str):
    """The cached semantic class embeddings (written by `python -m benchmark embed`) and their sidecar."""
    import torch

    from benchmark.hierarchy import load_embeddings  # imports scipy: only semantic cells pay for it

    emb, meta = load_embeddings(path)
    return torch.from_numpy(emb).float(), meta


def build_method(settings: dict, num_classes: int, in_channels: int,
                 class_counts: list[int]) -> tuple[Method, dict | None]:
    """The cell's method: its loss first, then its model (the order fixes the random initialisation), and
    a description of the semantic class embeddings it uses (None without)."""
    loss_args = dict(settings["method"])
    embeddings = None
    if "embeddings" in settings:
        vectors, sidecar = load_class_embeddings(settings["embeddings"])
        loss_args["class_embeddings"] = vectors
        embeddings = {"hierarchy": settings["hierarchy"], "embeddings_file": settings["embeddings"], **sidecar}
    cls = load(settings["method_target"])
    embed_dim = loss_args["class_embeddings"].shape[1] if embeddings is not None else num_classes
    if getattr(cls, "needs_class_counts", False):
        loss_args["class_counts"] = class_counts
    loss = cls(num_classes=num_classes, embed_dim=embed_dim, **loss_args)
    model = load(settings["model_target"])(in_channels=in_channels, output_dim=embed_dim)
    return Method(model, loss), embeddings
