"""Every loss against values worked out by hand from its definition (Barz & Denzler, WACV 2020).

The expected values are computed with `math`/`numpy` in float64 straight from the formulas,
never with the torch.nn.functional function the implementation might itself use.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from fixtures.loss_batch import OUTPUT, TARGET, C
from fixtures.loss_batch import tensors as _tensors
from fixtures.methods import defaults as method_defaults
from fixtures.tensors import assert_close

from benchmark.config import SCHEMA_PATH
from benchmark.losses.base import Loss
from benchmark.losses.cosine import CosineCrossEntropyLoss, CosineLoss
from benchmark.losses.mse import SquaredError
from benchmark.losses.softmax import LabelSmoothingCrossEntropy, SoftmaxCrossEntropy
from benchmark.methods import MethodContext, build_method
from benchmark.registry import METHODS, resolve

# Registered methods that are losses on the model's outputs (the others are Method subclasses).
LOSSES = sorted(name for name in METHODS if issubclass(resolve(METHODS, name, "method"), Loss))


def build_loss(name: str, num_classes: int, embed_dim: int, **settings) -> Loss:
    """The registered loss `name` with the schema's settings, `settings` overriding them."""
    return resolve(METHODS, name, "method")(num_classes, embed_dim, **{**method_defaults(name), **settings})


def cosine_ce(**settings) -> CosineCrossEntropyLoss:
    return CosineCrossEntropyLoss(num_classes=C, embed_dim=C, **{"ce_weight": 0.1, "head_weight_decay": 5e-4,
                                                                 **settings})


def _log_softmax_row(row: list[float]) -> list[float]:
    log_z = math.log(sum(math.exp(v) for v in row))
    return [v - log_z for v in row]


def _hand_ce(rows, targets) -> float:
    return float(np.mean([-_log_softmax_row(row)[y] for row, y in zip(rows, targets, strict=True)]))


def _hand_soft_target_ce(rows, targets, on: float, off: float) -> float:
    """-sum_c t_c log p_c with t_y = on and t_c = off elsewhere, averaged over the batch."""
    losses = []
    for row, y in zip(rows, targets, strict=True):
        logp = _log_softmax_row(row)
        losses.append(-sum((on if c == y else off) * logp[c] for c in range(len(row))))
    return float(np.mean(losses))


def _hand_cosine(rows, targets) -> float:
    """1 - f_y / ||f|| per sample (one-hot embeddings), averaged."""
    return float(np.mean([1.0 - row[y] / math.sqrt(sum(v * v for v in row))
                          for row, y in zip(rows, targets, strict=True)]))


# --------------------------------------------------------------------------- softmax CE

def test_softmax_ce_matches_hand_computation():
    out, y = _tensors()
    # Sample 0 by hand: log(e^1 + e^2 + e^0.5 + e^-1) - 2 = log(2.7183 + 7.3891 + 1.6487 + 0.3679) - 2.
    first = math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.5) + math.exp(-1.0)) - 2.0
    assert first == pytest.approx(0.4952, abs=1e-4)  # ln(12.1239) - 2
    expected = _hand_ce(OUTPUT, TARGET)
    got = SoftmaxCrossEntropy(num_classes=C, embed_dim=C)(out, y)
    assert got.ndim == 0
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_softmax_ce_perfect_and_uniform_logits():
    loss = SoftmaxCrossEntropy(num_classes=C, embed_dim=C)
    y = torch.tensor([0, 3])
    uniform = torch.zeros(2, C)
    assert loss(uniform, y).item() == pytest.approx(math.log(C), rel=1e-6)
    confident = torch.tensor([[50.0, 0, 0, 0], [0, 0, 0, 50.0]])
    assert loss(confident, y).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- label smoothing

def test_label_smoothing_matches_hand_computation():
    out, y = _tensors()
    eps = 0.1
    expected = _hand_soft_target_ce(OUTPUT, TARGET, on=1 - eps, off=eps / (C - 1))
    got = LabelSmoothingCrossEntropy(num_classes=C, embed_dim=C, epsilon=eps)(out, y).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # The smoothed target really is 0.9 / (0.1 / 3): it costs more than plain CE on these logits.
    assert got != pytest.approx(_hand_ce(OUTPUT, TARGET), rel=1e-3)


def test_label_smoothing_other_epsilon_and_zero_epsilon_is_ce():
    out, y = _tensors()
    eps = 0.3
    expected = _hand_soft_target_ce(OUTPUT, TARGET, on=0.7, off=0.1)  # 0.3 / 3 = 0.1
    got = LabelSmoothingCrossEntropy(num_classes=C, embed_dim=C, epsilon=eps)(out, y).item()
    assert got == pytest.approx(expected, rel=1e-6)
    zero = LabelSmoothingCrossEntropy(num_classes=C, embed_dim=C, epsilon=0.0)(out, y).item()
    assert zero == pytest.approx(_hand_ce(OUTPUT, TARGET), rel=1e-6)


def test_label_smoothing_differs_from_torch_builtin():
    """torch spreads eps over all C classes (1 - eps + eps/C and eps/C); ours gives 1 - eps and eps/(C-1)."""
    out, y = _tensors()
    ours = LabelSmoothingCrossEntropy(num_classes=C, embed_dim=C, epsilon=0.1)(out, y).item()
    torch_builtin = F.cross_entropy(out, y, label_smoothing=0.1).item()
    torch_by_hand = _hand_soft_target_ce(OUTPUT, TARGET, on=0.9 + 0.1 / C, off=0.1 / C)
    assert torch_builtin == pytest.approx(torch_by_hand, rel=1e-6)
    assert abs(ours - torch_builtin) > 1e-3
    # The paper's smoothing equals torch's with epsilon' = epsilon * C / (C - 1).
    equivalent = F.cross_entropy(out, y, label_smoothing=0.1 * C / (C - 1)).item()
    assert ours == pytest.approx(equivalent, rel=1e-6)


@pytest.mark.parametrize("epsilon", [-0.1, 1.0, 1.5])
def test_label_smoothing_rejects_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        LabelSmoothingCrossEntropy(num_classes=C, embed_dim=C, epsilon=epsilon)


# --------------------------------------------------------------------------- squared error

def test_mse_is_sum_over_classes_of_raw_output():
    out, y = _tensors()
    # Sample 0 by hand: (1-0)^2 + (2-1)^2 + (0.5-0)^2 + (-1-0)^2 = 1 + 1 + 0.25 + 1 = 3.25
    # Sample 1: 0 + 1 + (3-1)^2 + 0.0625 = 5.0625;  sample 2: (-0.5-1)^2 + 0.25 + 0 + 4 = 6.5
    expected = (3.25 + 5.0625 + 6.5) / 3
    got = SquaredError(num_classes=C, embed_dim=C)(out, y).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # Not the per-element mean: that would be C times smaller.
    assert got == pytest.approx(C * F.mse_loss(out, F.one_hot(y, C).float()).item(), rel=1e-6)


def test_mse_is_not_normalised():
    loss = SquaredError(num_classes=C, embed_dim=C)
    y = torch.tensor([0])
    onehot = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert loss(onehot, y).item() == 0.0
    # Scaling the output changes the loss: (3-1)^2 = 4, no normalisation.
    assert loss(3 * onehot, y).item() == pytest.approx(4.0)


# --------------------------------------------------------------------------- cosine

def test_cosine_matches_hand_computation():
    out, y = _tensors()
    # Sample 0: ||f|| = sqrt(1 + 4 + 0.25 + 1) = 2.5, f_y = 2  ->  1 - 0.8 = 0.2
    assert _hand_cosine(OUTPUT[:1], TARGET[:1]) == pytest.approx(0.2)
    expected = _hand_cosine(OUTPUT, TARGET)
    got = CosineLoss(num_classes=C, embed_dim=C)(out, y).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_cosine_extremes_zero_one_two():
    loss = CosineLoss(num_classes=C, embed_dim=C)
    y = torch.tensor([2])
    e = torch.zeros(1, C)
    e[0, 2] = 1.0
    assert loss(5 * e, y).item() == pytest.approx(0.0, abs=1e-7)     # aligned
    assert loss(-5 * e, y).item() == pytest.approx(2.0, abs=1e-7)    # opposite
    orth = torch.tensor([[1.0, 1.0, 0.0, -1.0]])
    assert loss(orth, y).item() == pytest.approx(1.0, abs=1e-7)      # orthogonal


def test_cosine_lies_in_zero_two():
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(256, 10, generator=gen) * 10
    y = torch.randint(0, 10, (256,), generator=gen)
    loss = CosineLoss(num_classes=10, embed_dim=10)
    per_sample = [loss(out[i:i + 1], y[i:i + 1]).item() for i in range(256)]
    assert min(per_sample) >= 0.0
    assert max(per_sample) <= 2.0
    assert min(per_sample) < 0.5 and max(per_sample) > 1.5  # the random batch spans the range


@pytest.mark.parametrize("scale", [1e-3, 0.37, 1.0, 2.5, 41.0, 1e3])
def test_cosine_is_scale_invariant_and_gradients_flow(scale):
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(6, 5, generator=gen)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = CosineLoss(num_classes=5, embed_dim=5)

    ref_in = base.clone().requires_grad_(True)
    ref = loss(ref_in, y)
    ref.backward()

    scaled_in = (scale * base).requires_grad_(True)
    value = loss(scaled_in, y)
    value.backward()

    assert value.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    assert value.item() == pytest.approx(_hand_cosine(base.tolist(), y.tolist()), rel=1e-5)
    grad = scaled_in.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    # A scale-invariant function has gradient ref_grad / scale at scale * f, orthogonal to f.
    assert_close(grad * scale, ref_in.grad, rtol=1e-4, atol=1e-6)
    assert (grad * scaled_in.detach()).sum(dim=1).abs().max() < 1e-5 * max(1.0, scale)


def test_cosine_custom_embeddings_are_normalised_and_checked():
    # Three classes embedded in 2-D at 0, 90 and 180 degrees, given with non-unit length.
    emb = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0]])
    loss = CosineLoss(num_classes=3, embed_dim=2, class_embeddings=emb)
    out = torch.tensor([[3.0, 4.0]])  # unit: (0.6, 0.8)
    # class 0: 1 - 0.6 = 0.4; class 1: 1 - 0.8 = 0.2; class 2: 1 + 0.6 = 1.6
    for cls, expected in [(0, 0.4), (1, 0.2), (2, 1.6)]:
        assert loss(out, torch.tensor([cls])).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        CosineLoss(num_classes=3, embed_dim=3, class_embeddings=emb)


# --------------------------------------------------------------------------- cosine + CE

def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter and BN statistic a non-default value so the manual check is meaningful."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        bn = module.head[1]
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen) * 0.1)
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)


def _head_by_hand(loss: CosineCrossEntropyLoss, rows: np.ndarray, train: bool) -> np.ndarray:
    """ReLU -> BatchNorm1d -> Linear on the L2-normalised rows, from the module's own parameters."""
    bn, lin = loss.head[1], loss.head[2]
    e = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    r = np.maximum(e, 0.0)
    if train:
        mu, var = r.mean(axis=0), r.var(axis=0)  # batch statistics, biased variance
    else:
        mu, var = bn.running_mean.double().numpy(), bn.running_var.double().numpy()
    gamma, beta = bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy()
    z = (r - mu) / np.sqrt(var + bn.eps) * gamma + beta
    return z @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()


def _ce_from_logits(logits: np.ndarray, targets) -> float:
    return _hand_ce(logits.tolist(), list(targets))


@pytest.mark.parametrize("ce_weight", [0.1, 0.7])
def test_cosine_ce_reproduces_head_by_hand(ce_weight):
    torch.manual_seed(0)
    loss = cosine_ce(ce_weight=ce_weight)
    _randomise(loss, 3)
    loss.train()
    rows = np.array(OUTPUT)
    out, y = _tensors()
    logits = _head_by_hand(loss, rows, train=True)
    expected = _hand_cosine(OUTPUT, TARGET) + ce_weight * _ce_from_logits(logits, TARGET)
    got = loss(out, y).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # The CE term is really there (and weighted): it is not the plain cosine loss.
    assert abs(got - _hand_cosine(OUTPUT, TARGET)) > 1e-3


def test_cosine_ce_schema_defaults_are_the_papers_and_head_layout():
    loss = build_loss("cosine_ce", num_classes=C, embed_dim=C)  # the schema's settings
    assert loss.ce_weight == 0.1
    assert loss.head_weight_decay == 5e-4
    layers = list(loss.head)
    assert [type(m) for m in layers] == [torch.nn.ReLU, torch.nn.BatchNorm1d, torch.nn.Linear]
    assert layers[1].num_features == C
    assert (layers[2].in_features, layers[2].out_features) == (C, C)


def test_cosine_ce_scores_use_head_in_eval_mode():
    loss = cosine_ce()
    _randomise(loss, 5)
    loss.eval()
    rows = np.array(OUTPUT)
    out, _ = _tensors()
    expected = _head_by_hand(loss, rows, train=False)
    got = loss.scores(out).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert list(got.argmax(axis=1)) == list(expected.argmax(axis=1))


def test_cosine_ce_gradients_reach_head_and_output():
    loss = cosine_ce()
    _randomise(loss, 7)
    out = torch.tensor(OUTPUT, requires_grad=True)
    loss(out, torch.tensor(TARGET)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    for name, p in loss.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert loss.head[2].weight.grad.abs().sum() > 0


def test_cosine_ce_parameter_groups_decay_linear_weight_only():
    loss = cosine_ce()
    groups = loss.parameter_groups()
    linear, bn = loss.head[2], loss.head[1]
    decayed = [g for g in groups if g["weight_decay"] > 0]
    assert len(decayed) == 1
    assert decayed[0]["weight_decay"] == 5e-4
    assert len(decayed[0]["params"]) == 1 and decayed[0]["params"][0] is linear.weight
    undecayed = [p for g in groups if g["weight_decay"] == 0.0 for p in g["params"]]
    assert {id(p) for p in undecayed} == {id(linear.bias), id(bn.weight), id(bn.bias)}
    # Every trainable parameter is in exactly one group.
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in loss.parameters())

    custom = cosine_ce(head_weight_decay=1e-2).parameter_groups()
    assert [g["weight_decay"] for g in custom] == [1e-2, 0.0]


@pytest.mark.parametrize("name", ["softmax_ce", "label_smoothing", "mse", "cosine"])
def test_parameter_free_losses_have_no_groups(name):
    loss = build_loss(name, num_classes=C, embed_dim=C)
    assert list(loss.parameters()) == []
    assert loss.parameter_groups() == []


# --------------------------------------------------------------------------- scores / prediction rules

@pytest.mark.parametrize("name", ["softmax_ce", "label_smoothing", "mse"])
def test_scores_are_raw_output_for_argmax_losses(name):
    loss = build_loss(name, num_classes=C, embed_dim=C)
    out, _ = _tensors()
    assert torch.equal(loss.scores(out), out)
    assert loss.scores(out).argmax(dim=1).tolist() == [1, 2, 3]


def test_cosine_scores_are_normalised_output_times_embeddings():
    out, _ = _tensors()
    onehot = CosineLoss(num_classes=C, embed_dim=C)
    s = onehot.scores(out)
    # With one-hot embeddings the score is f / ||f||: sample 0 -> (1, 2, 0.5, -1) / 2.5
    np.testing.assert_allclose(s[0].numpy(), [0.4, 0.8, 0.2, -0.4], rtol=1e-6)
    assert s.argmax(dim=1).tolist() == [1, 2, 3]

    # Non-one-hot embeddings: the prediction follows the embedding, not the largest output entry.
    emb = torch.tensor([[1.0, 0.0], [math.cos(2.0), math.sin(2.0)], [math.cos(4.0), math.sin(4.0)]])
    loss = CosineLoss(num_classes=3, embed_dim=2, class_embeddings=emb)
    outputs = torch.tensor([[0.2, 1.0], [-1.0, -1.0], [5.0, 0.1]])
    scores = loss.scores(outputs)
    for i, (a, b) in enumerate(outputs.tolist()):
        norm = math.hypot(a, b)
        by_hand = [(a * ex + b * ey) / norm for ex, ey in emb.tolist()]
        np.testing.assert_allclose(scores[i].numpy(), by_hand, rtol=1e-5, atol=1e-6)
        assert scores[i].argmax().item() == int(np.argmax(by_hand))
    assert scores.argmax(dim=1).tolist() == [1, 2, 0]


# --------------------------------------------------------------------------- registry and schema

@pytest.mark.parametrize("name", LOSSES)
def test_every_registered_loss_builds_with_the_schema_defaults_and_trains(name):
    """build_method as the trainer calls it: the schema's settings, the model sized by the loss."""
    cls = resolve(METHODS, name, "method")
    context = MethodContext(num_classes=5, in_channels=1, class_counts=[3, 1, 4, 1, 5])
    settings = {"method_target": METHODS[name], "method": method_defaults(name),
                "model_target": "benchmark.models.small_cnn:SmallCNN"}
    if name.endswith("_semantic"):
        context.embeddings = torch.eye(5)
    torch.manual_seed(0)
    method = build_method(settings, context)
    assert type(method.loss) is cls
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=gen, requires_grad=True)
    y = torch.arange(8) % 5
    value = method.objective(x, y)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert method.scores(x.detach()).shape == (8, 5)


def test_loss_settings_are_keyword_only_without_defaults():
    """Settings come from the schema only: a loss built without them is an error, not a silent default."""
    with pytest.raises(TypeError, match="epsilon"):
        LabelSmoothingCrossEntropy(C, C)
    with pytest.raises(TypeError, match="ce_weight"):
        CosineCrossEntropyLoss(C, C)
    with pytest.raises(TypeError):
        SquaredError(C, C, epsilon=0.1)  # type: ignore[call-arg]
    assert build_loss("label_smoothing", num_classes=3, embed_dim=3, epsilon=0.2).epsilon == 0.2
    assert build_loss("cosine_ce", num_classes=3, embed_dim=3, ce_weight=0.5).ce_weight == 0.5
    with pytest.raises(KeyError, match="nope"):
        resolve(METHODS, "nope", "method")


# Constructor arguments the trainer supplies itself; every other one is a config method_settings key.
NOT_CONFIGURABLE = ("self", "num_classes", "embed_dim", "class_embeddings", "class_counts")


def _constructor_settings(name: str) -> dict[str, inspect.Parameter]:
    params = inspect.signature(resolve(METHODS, name, "method").__init__).parameters
    return {k: p for k, p in params.items() if k not in NOT_CONFIGURABLE}


def _resolve(schema: dict, entry: dict) -> dict:
    """A schema entry with its local '$ref' ("#/definitions/x") followed."""
    if "$ref" not in entry:
        return entry
    node = schema
    for part in entry["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def _has_default(schema: dict, entry: dict) -> bool:
    """A default beside the entry's $ref or in what it refers to (as benchmark.config fills them)."""
    while "default" not in entry and "$ref" in entry:
        entry = _resolve(schema, entry)
    return "default" in entry


def test_schema_method_settings_match_constructors():
    """Every registered method has a method_settings entry; a loss's entry names exactly its keyword-only
    settings (and `embed_dim`, which build_method takes), each with a default in the schema and none in
    Python (one place for every default)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    entries = schema["properties"]["method_settings"]["properties"]
    assert schema["properties"]["method_settings"]["additionalProperties"] is False
    assert set(entries) == set(METHODS), "every registered method needs a method_settings entry, and no others"
    for name in LOSSES:
        entry = _resolve(schema, entries[name])
        assert entry.get("additionalProperties") is False, name
        properties = entry.get("properties", {})
        if "embed_dim" in properties:  # the model's output size for a loss with its own classifier (build_method)
            assert _has_default(schema, properties["embed_dim"]), name
        params = _constructor_settings(name)
        assert set(properties) - {"embed_dim"} == set(params), name
        for key, param in params.items():
            assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty, \
                (name, key)
            assert _has_default(schema, properties[key]), (name, key)
