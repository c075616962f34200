"""Loss registry: config name -> "module:class". Add a loss: one file here, one line below."""

from benchmark.registry import resolve

LOSSES: dict[str, str] = {
    "softmax_ce": "benchmark.losses.softmax:SoftmaxCrossEntropy",
    "label_smoothing": "benchmark.losses.softmax:LabelSmoothingCrossEntropy",
    "mse": "benchmark.losses.mse:SquaredError",
    "cosine": "benchmark.losses.cosine:CosineLoss",
    "cosine_ce": "benchmark.losses.cosine:CosineCrossEntropyLoss",
}


def build_loss(name: str, num_classes: int, embed_dim: int, **settings):
    """Instantiate the loss `name` for `num_classes` classes and network outputs of `embed_dim`."""
    return resolve(LOSSES, name, "loss")(num_classes=num_classes, embed_dim=embed_dim, **settings)
