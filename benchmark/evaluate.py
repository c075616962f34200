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


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, num_classes: int) -> list[float | None]:
    """Each class's recall (None for a class without test images)."""
    return [float((pred[target == c] == c).mean()) if (target == c).any() else None for c in range(num_classes)]


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> list[list[int]]:
    """counts[true][predicted]."""
    counts = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).tolist()


@torch.inference_mode()
def predict(method, batches) -> np.ndarray:
    """Predicted class of every input, from the method's own scoring rule (see `Method.scores`)."""
    method.eval()
    preds = [method.scores(x).argmax(dim=1).cpu() for x in batches]
    return torch.cat(preds).numpy()
