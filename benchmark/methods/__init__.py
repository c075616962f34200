"""Training methods: what a cell trains. Today every method is a model with a loss on its outputs
(benchmark/losses/); methods that need more than that subclass `Method` (benchmark/methods/base.py)."""

from __future__ import annotations

from benchmark.losses import build_loss, split_label
from benchmark.methods.base import Method
from benchmark.models import build_model


def load_class_embeddings(path: str):
    """The cached semantic class embeddings (written by `python -m benchmark embed`) and their sidecar."""
    import torch

    from benchmark.hierarchy import load_embeddings  # imports scipy: only semantic cells pay for it

    emb, meta = load_embeddings(path)
    return torch.from_numpy(emb).float(), meta


def build_method(label: str, settings: dict, num_classes: int, in_channels: int,
                 class_counts: list[int]) -> tuple[Method, dict | None]:
    """The method of the loss label `label` (its loss first, then its model: the order fixes the random
    initialisation), and a description of the semantic class embeddings it uses (None without)."""
    name, hierarchy = split_label(label)
    loss_args = dict(settings["loss"])
    embeddings = None
    if hierarchy is not None:
        vectors, sidecar = load_class_embeddings(settings["embeddings"])
        loss_args["class_embeddings"] = vectors
        embeddings = {"hierarchy": hierarchy, "embeddings_file": settings["embeddings"], **sidecar}
    embed_dim = loss_args["class_embeddings"].shape[1] if hierarchy is not None else num_classes
    loss = build_loss(name, num_classes=num_classes, embed_dim=embed_dim, class_counts=class_counts, **loss_args)
    model = build_model(settings["model"], in_channels, embed_dim)
    return Method(model, loss), embeddings
