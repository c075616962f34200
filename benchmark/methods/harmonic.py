"""Harmonic networks as a training method: the cell's model with its convolutions made harmonic, trained with CE.

Ulicny, Krylov, Dahyot, "Harmonic Networks with Limited Training Samples" (EUSIPCO 2019, arXiv 1905.00135)
and arXiv 2001.06570; on small data as GEM runs them (Brigato et al., github lorenzobrigato/gem,
gem/pipelines/harmonic.py): the first conv becomes a fixed-DCT harmonic block, every other non-1x1 conv a
learned combination of the DCT basis (benchmark/models/harmonic.py: harmonize), plain cross-entropy.
As a method (not only as the registered harmonic_* models) it is a table row beside softmax_ce on the
same dataset and model. Predict argmax of the logits.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from benchmark.losses.softmax import SoftmaxCrossEntropy
from benchmark.methods.base import Method, MethodContext
from benchmark.models.harmonic import Harm2d, harmonize


class Harmonic(Method):
    """CE on harmonize(model): the model the dataset names, with DCT-based convolutions. No settings."""

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model: Callable[[int], nn.Module]) -> Harmonic:
        loss = SoftmaxCrossEntropy(context.num_classes, context.num_classes)
        model = make_model(context.num_classes)
        if any(isinstance(m, Harm2d) for m in model.modules()):
            raise ValueError("method harmonic harmonizes the dataset's model, which is harmonic already; give the "
                             "dataset the plain model (e.g. small_cnn) or use softmax_ce")
        return cls(harmonize(model), loss)
