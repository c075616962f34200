"""Accuracy and balanced accuracy of a trained method's predictions."""

from __future__ import annotations

import numpy as np
import torch


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    return float((pred == target).mean())


def balanced_accuracy(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """Mean over the classes present in `target` of each class's recall."""
    recalls = [float((pred[target == c] == c).mean()) for c in range(num_classes) if (target == c).any()]
    return float(np.mean(recalls))


@torch.inference_mode()
def predict(method, batches) -> np.ndarray:
    """Predicted class of every input, from the method's own scoring rule (see `Method.scores`)."""
    method.eval()
    preds = [method.scores(x).argmax(dim=1).cpu() for x in batches]
    return torch.cat(preds).numpy()
