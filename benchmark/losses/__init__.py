"""Loss registry: config name -> "module:class". Add a loss: one file here, one line below."""

from __future__ import annotations

from benchmark.registry import resolve

LOSSES: dict[str, str] = {
    "softmax_ce": "benchmark.losses.softmax:SoftmaxCrossEntropy",
    "label_smoothing": "benchmark.losses.softmax:LabelSmoothingCrossEntropy",
    "mse": "benchmark.losses.mse:SquaredError",
    "cosine": "benchmark.losses.cosine:CosineLoss",
    "cosine_ce": "benchmark.losses.cosine:CosineCrossEntropyLoss",
    "cosine_semantic": "benchmark.losses.cosine:CosineLoss",
    "cosine_ce_semantic": "benchmark.losses.cosine:CosineCrossEntropyLoss",
    "focal": "benchmark.losses.focal:FocalLoss",
    "cb_softmax": "benchmark.losses.class_balanced:ClassBalancedSoftmax",
    "cb_focal": "benchmark.losses.class_balanced:ClassBalancedFocal",
    "cb_sigmoid": "benchmark.losses.class_balanced:ClassBalancedSigmoid",
    "cb_sigmoid_focal": "benchmark.losses.class_balanced:ClassBalancedSigmoidFocal",
}

# Losses whose class embeddings phi(y) come from a class hierarchy (Barz & Denzler 2020, Sec. 3.3)
# instead of one-hot vectors. In a grid each runs once per hierarchy listed in
# dataset_settings.<dataset>.hierarchies, as the loss label "<loss>-<hierarchy>".
SEMANTIC: frozenset[str] = frozenset({"cosine_semantic", "cosine_ce_semantic"})


def split_label(label: str) -> tuple[str, str | None]:
    """A cell's loss label -> (registered loss name, hierarchy or None): "cosine_semantic-cub_flat"."""
    loss, _, hierarchy = label.partition("-")
    return loss, hierarchy or None


def build_loss(name: str, num_classes: int, embed_dim: int, class_counts=None, **settings):
    """Instantiate the loss `name` for `num_classes` classes and network outputs of `embed_dim`.

    `class_counts` (images per class of the training subset) goes only to losses that declare
    `needs_class_counts`, so the trainer can pass it to every loss.
    """
    cls = resolve(LOSSES, name, "loss")
    if getattr(cls, "needs_class_counts", False):
        settings["class_counts"] = class_counts
    return cls(num_classes=num_classes, embed_dim=embed_dim, **settings)
