"""The methods of issue 11 as the trainer runs them: built by build_method from a validated config's cell
settings and trained by a real train_cell on the prepared digits (C = 10, chance 0.1).

That each of them learns is tests/test_learning.py's (every registered method). Here: trained on labels
shuffled against the images, each must stay near chance (softmax_ce in the fast suite, the ten
others slow). Only the labels can
carry information to the test set, so a method that reads the test images' labels, or a trainer that
trains on test images, beats chance here. Measured (CPU, 1 thread, torch 2.14, these seeds, 3 epochs of
20 steps of 64 images): shuffled 0.07-0.15 (true labels 0.84-0.98); about 0.5 s per cell. The rest
checks each method's parts: the features a margin loss gets, OLE's pooled features, Grad-L2's double
backprop, the harmonic model, the methods grid.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures.methods import defaults
from fixtures.tensors import assert_close

from benchmark.config import REPO_ROOT, load_config, validate
from benchmark.data.prepared import load_prepared, write_prepared
from benchmark.grid import cell_settings
from benchmark.losses.grad_l2 import input_gradient_penalty
from benchmark.losses.ole import ole_penalty
from benchmark.methods import MethodContext, Mixed, build_method
from benchmark.models.harmonic import Harm2d
from benchmark.registry import METHODS, SEMANTIC
from benchmark.train import Cell, RunOptions, train_cell

# The new methods and the rate each trains at here (hand-set; config/methods.yaml uses the same):
# the s = 64 margin losses want small steps, t-vMF (scale starting at 1.69) a large one.
LR = {"l2_softmax": 0.05, "normface": 0.05, "cosface": 0.02, "arcface": 0.02, "sphereface": 0.05,
      "lsoftmax": 0.05, "tvmf": 0.5, "ole": 0.05, "grad_l2": 0.05, "harmonic": 0.05}
EPOCHS, STEPS = 3, 20
MAX_SHUFFLED_ACCURACY = 0.25  # chance 0.1, measured <= 0.150


def config_for(method: str, **top) -> dict:
    return validate({
        "grid": "methods_extra", "datasets": ["digits"], "methods": [method], "samples_per_class": ["all"],
        "seeds": [0], "device": "cpu", "precision": "fp32", "tracking": False,
        "train": {"epochs": EPOCHS, "steps_per_epoch": STEPS, "batch_size": 64, "lr": LR.get(method, 0.05)},
        "dataset_settings": {"digits": {"model": "small_cnn"}}, **top,
    })


def settings_for(method: str, **top) -> dict:
    return cell_settings(config_for(method, **top), "digits", method)


@pytest.fixture(scope="module")
def shuffled_digits(digits, tmp_path_factory):
    """The prepared digits with the training pool's labels permuted (test labels untouched)."""
    prepared = load_prepared(digits)
    labels = prepared.labels.copy()
    pool = prepared.train_idx
    labels[pool] = labels[pool][np.random.default_rng(0).permutation(pool.size)]
    out = tmp_path_factory.mktemp("shuffled") / "digits"
    write_prepared(out, "digits", prepared.images, labels, pool, prepared.test_idx, prepared.metadata["classes"])
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def _train(method: str, data) -> dict:
    return train_cell(Cell("digits", method, "all", 0, 0), settings_for(method), RunOptions("cpu", 1, 1024), data)


# softmax_ce in the fast suite (a trainer that reads test images or labels fails it), the methods here in the slow.
@pytest.mark.parametrize("method", ["softmax_ce", *(pytest.param(m, marks=pytest.mark.slow) for m in sorted(LR))])
def test_shuffled_labels_stay_near_chance(method, shuffled_digits):
    result = _train(method, shuffled_digits)
    assert result["test_accuracy"] < MAX_SHUFFLED_ACCURACY, (method, result["test_accuracy"])


def _context() -> MethodContext:
    return MethodContext(num_classes=10, in_channels=1, class_counts=[5] * 10)


def _batch(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.arange(n) % 10


MARGIN_LOSSES = ["l2_softmax", "normface", "cosface", "arcface", "sphereface", "lsoftmax", "tvmf"]


@pytest.mark.parametrize("method", MARGIN_LOSSES)
def test_margin_losses_get_embed_dim_features_from_the_model(method):
    assert defaults(method)["embed_dim"] == 128
    config = config_for(method)
    config["method_settings"][method]["embed_dim"] = 24
    built = build_method(cell_settings(config, "digits", method), _context())
    x, _ = _batch()
    assert built.model(x).shape == (12, 24)
    classifier = getattr(built.loss, "weight", None)
    classifier = classifier if classifier is not None else built.loss.classifier.weight
    assert classifier.shape == (10, 24)
    assert built.scores(x).shape == (12, 10)


def test_ole_gets_the_pooled_features_through_method_outputs():
    built = build_method(settings_for("ole"), _context())
    x, y = _batch()
    torch.manual_seed(0)
    value = built.objective(x, y)
    features = built.model.features(x)
    logits = built.model.head(features)
    assert features.shape == (12, 64)  # small_cnn's pooled features, not its 10 logits
    weight, delta = defaults("ole")["ole_weight"], defaults("ole")["delta"]
    expected = F.cross_entropy(logits, y) + weight / 12 * ole_penalty(features, y, delta)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    as_if_logits = F.cross_entropy(logits, y) + weight / 12 * ole_penalty(logits, y, delta)
    assert abs(value.item() - as_if_logits.item()) > 1e-3


def _grads(module: torch.nn.Module, value: torch.Tensor) -> list[torch.Tensor]:
    params = [p for p in module.parameters() if p.requires_grad]
    return list(torch.autograd.grad(value, params))


# Large: at initialisation the input gradients of small_cnn are small (penalty ~1e-4 per unit weight).
WEIGHT = 1000.0


def test_grad_l2_objective_is_ce_plus_the_input_gradient_penalty_with_double_backprop():
    settings = settings_for("grad_l2")
    settings["method"]["weight"] = WEIGHT
    built = build_method(settings, _context())
    built.eval()  # BatchNorm on running statistics: every forward pass below sees the same function
    x, y = _batch()
    value = built.objective(x, y)
    logits = built.model(x)
    penalty = input_gradient_penalty(built.model, x, y, WEIGHT)
    assert penalty.item() > 0.01  # large enough to matter below
    assert value.item() == pytest.approx((F.cross_entropy(logits, y) + penalty).item(), rel=1e-5)
    # The penalty's own parameter gradient arrives (double backprop), not only the CE's.
    got = _grads(built, value)
    want = [a + b for a, b in zip(_grads(built, F.cross_entropy(built.model(x), y)),
                                   _grads(built, input_gradient_penalty(built.model, x, y, WEIGHT)), strict=True)]
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(torch.cat([g.flatten() for g in got]),
                              torch.cat([g.flatten() for g in _grads(built, F.cross_entropy(built.model(x), y))]))
    assert_close(built.scores(x), logits)  # predict argmax of the logits


def test_grad_l2_with_mixed_targets_penalises_the_mixed_loss():
    settings = settings_for("grad_l2")
    settings["method"]["weight"] = WEIGHT
    built = build_method(settings, _context())
    built.eval()
    x, y = _batch()
    y_b = (y + 3) % 10
    lam = torch.tensor(0.7)
    value = built.objective(x, Mixed(y, y_b, lam))
    leaf = x.clone().requires_grad_(True)
    logits = built.model(leaf)
    mixed_sum = 0.7 * F.cross_entropy(logits, y, reduction="sum") + 0.3 * F.cross_entropy(logits, y_b, reduction="sum")
    (grad,) = torch.autograd.grad(mixed_sum, leaf)
    expected = mixed_sum / 12 + WEIGHT * grad.pow(2).sum() / 12
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_harmonic_trains_the_datasets_model_harmonized():
    built = build_method(settings_for("harmonic"), _context())
    harmonic = [m for m in built.model.modules() if isinstance(m, Harm2d)]
    assert len(harmonic) == 3 and harmonic[0].use_bn and not any(h.use_bn for h in harmonic[1:])
    assert not any(type(m) is torch.nn.Conv2d for m in built.model.modules())
    x, y = _batch()
    assert built.scores(x).shape == (12, 10)
    with pytest.raises(ValueError, match="harmonic already"):
        config = config_for("harmonic")
        config["dataset_settings"]["digits"]["model"] = "harmonic_small_cnn"
        build_method(cell_settings(config, "digits", "harmonic"), _context())


def _recipe_parts(recipe: dict) -> set[str]:
    """The parts of a filled train.recipe that are on."""
    on = {"trivial_augment": recipe["trivial_augment"], "erase": recipe["erase"]["p"] > 0,
          "mixup": recipe["mixup"]["alpha"] > 0, "cutmix": recipe["cutmix"]["p"] > 0, "ema": recipe["ema"]["decay"] > 0}
    return {part for part, value in on.items() if value}


def test_methods_grid_runs_every_registered_method_and_each_recipe_part_on_ce_and_cosine():
    config = load_config(REPO_ROOT / "config" / "methods.yaml", base=REPO_ROOT / "config" / "config.yaml")
    assert config["grid"] == "methods" and config["datasets"] == ["digits", "mnist5k"]
    assert len(config["seeds"]) >= 3 and len(config["samples_per_class"]) >= 3
    registered = {config["variants"].get(m, {}).get("method", m) for m in config["methods"]}
    # the digits datasets have no class hierarchy; the methods of several runs have configs of their own
    assert registered == set(METHODS) - SEMANTIC - {"sla", "sla_sd", "kd", "rkd", "m2m"}
    others = [load_config(REPO_ROOT / "config" / f"{name}.yaml", base=REPO_ROOT / "config" / "config.yaml")
              for name in ("distill", "longtail")]
    assert {"sla", "sla_sd", "kd", "rkd", "m2m"} <= {m for other in others for m in other["methods"]}
    for base in ("softmax_ce", "cosine"):
        alone = set()
        for name, variant in config["variants"].items():
            parts = _recipe_parts(cell_settings(config, "digits", name)["train"]["recipe"])
            if variant["method"] == base and len(parts) == 1:
                alone |= parts
        assert alone == {"trivial_augment", "erase", "mixup", "cutmix", "ema"}, base
