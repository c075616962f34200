"""Learning smoke for the normalised/margin losses, OLE and Grad-L2 on sklearn's digits (8x8, C = 10).

A small MLP (64 -> 64 -> D) trained for 200 SGD steps must reach a test accuracy far above chance
(0.1) with a falling training loss; trained on labels shuffled against the images it must stay near
chance. The second run is what catches a loss that pairs outputs with the wrong labels or pushes the
target the wrong way: such a loss cannot beat chance on the true labels either, and nothing but the
labels can carry information to the test set.

Measured (these seeds, CPU, torch 2.14): test accuracy 0.953-0.980 for every loss with true labels,
0.070-0.144 with shuffled labels; the thresholds below leave a wide margin on both sides. 0.2-1 s per run
with one thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import pytest
import torch
from fixtures.methods import make_loss
from torch import nn

from benchmark.losses.grad_l2 import grad_l2_objective
from benchmark.losses.softmax import SoftmaxCrossEntropy
from benchmark.optim import SGD

C, D = 10, 32
STEPS, BATCH, LR = 200, 64, 0.1
MIN_ACCURACY = 0.85  # measured 0.953-0.980
MAX_SHUFFLED_ACCURACY = 0.25  # chance 0.1, measured <= 0.144


@cache
def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[:1200], order[1200:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-3  # train statistics only
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


# name -> (loss factory, extra options); the factories keep each loss's own defaults except where noted.
SPECS: dict[str, tuple[Callable[[], nn.Module], dict]] = {
    "l2_softmax": (lambda: make_loss("l2_softmax", C, D), {}),  # alpha_low(10) = 4.28
    "normface": (lambda: make_loss("normface", C, D), {}),
    "cosface": (lambda: make_loss("cosface", C, D), {}),  # s = 64, m = 0.35 (paper)
    "arcface": (lambda: make_loss("arcface", C, D), {}),  # s = 64, m = 0.5 (insightface)
    # The official schedule would keep lambda near 27 for these 200 steps (almost plain softmax);
    # gamma = 1 brings lambda to its floor 5 at step 199, so the full A-Softmax margin is trained.
    "sphereface": (lambda: make_loss("sphereface", C, D, gamma=1.0), {}),
    # lambda -> 0 (full margin m = 2) within 200 steps; stable only with BatchNorm on the features,
    # as in the official CIFAR net (without it the feature norm grows until the loss overflows).
    "lsoftmax": (lambda: make_loss("lsoftmax", C, D, gamma=0.005), {"feature_bn": True}),
    "tvmf": (lambda: make_loss("tvmf", C, D), {}),  # kappa = 16
    "ole": (lambda: make_loss("ole", C, C), {}),
    "grad_l2": (lambda: SoftmaxCrossEntropy(C, C), {"grad_l2": 0.01}),
}


def _train(name: str, shuffle: bool) -> tuple[float, float, float]:
    """(test accuracy, mean loss of the first 20 steps, of the last 20 steps)."""
    make, options = SPECS[name]
    x_train, y_train, x_test, y_test = _digits()
    if shuffle:
        y_train = y_train[torch.randperm(len(y_train), generator=torch.Generator().manual_seed(1))]
    torch.manual_seed(0)
    loss = make()
    uses_features = getattr(loss, "uses_features", False)
    out_dim = C if uses_features or "grad_l2" in options else D
    body = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    head = nn.Sequential(nn.Linear(64, out_dim), *([nn.BatchNorm1d(out_dim)] if options.get("feature_bn") else []))
    model = nn.Sequential(body, head)
    optimizer = SGD([{"params": list(model.parameters())}, *loss.parameter_groups()], lr=LR, momentum=0.9,
                    weight_decay=5e-4)
    batches = torch.Generator().manual_seed(2)
    history = []
    for _ in range(STEPS):
        idx = torch.randint(0, len(y_train), (BATCH,), generator=batches)
        x, y = x_train[idx], y_train[idx]
        if "grad_l2" in options:
            value, _ = grad_l2_objective(model, x, y, options["grad_l2"])
        elif uses_features:
            features = body(x)
            value = loss(head(features), y, features)
        else:
            value = loss(model(x), y)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        history.append(value.item())
    model.eval()
    loss.eval()
    with torch.no_grad():
        accuracy = (loss.scores(model(x_test)).argmax(dim=1) == y_test).float().mean().item()
    return accuracy, sum(history[:20]) / 20, sum(history[-20:]) / 20


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tiny ops only pay for more, badly so on a shared machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow  # tests/test_learning.py trains each of these methods through the trainer in the fast suite
@pytest.mark.parametrize("name", sorted(SPECS))
def test_learns_digits(name):
    accuracy, first, last = _train(name, shuffle=False)
    assert accuracy > MIN_ACCURACY, (name, accuracy)
    assert last < 0.5 * first, (name, first, last)


@pytest.mark.slow  # tests/test_methods_extra.py trains softmax_ce on shuffled labels through the trainer, fast
@pytest.mark.parametrize("name", sorted(SPECS))
def test_shuffled_labels_stay_near_chance(name):
    accuracy, _, last = _train(name, shuffle=True)
    assert accuracy < MAX_SHUFFLED_ACCURACY, (name, accuracy)
    assert math.isfinite(last), name  # the loss trained; it just had nothing to learn
