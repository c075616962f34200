"""benchmark.optim against torch.optim.SGD and torch.nn.utils.clip_grad_norm_, step for step."""

from __future__ import annotations

import copy

import pytest
import torch
from fixtures.tensors import assert_close
from torch import nn

from benchmark.optim import SGD, clip_grad_norm


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 5, generator=gen), torch.randn(16, 3, generator=gen)


def _groups(model: nn.Module) -> list[dict]:
    # First layer: its own weight decay; second layer: the optimiser's default.
    return [{"params": list(model[0].parameters()), "weight_decay": 1e-2},
            {"params": list(model[2].parameters())}]


def _backward(model: nn.Module, step: int) -> None:
    x, y = _batch(step)
    ((model(x) - y) ** 2).sum(dim=1).mean().backward()


LRS = [0.1, 0.1, 0.05, 0.2, 0.01, 0.08]


@pytest.mark.parametrize("momentum,nesterov", [(0.9, False), (0.9, True), (0.0, False)])
def test_sgd_matches_torch_step_for_step(momentum, nesterov):
    ours_model = _model()
    ref_model = copy.deepcopy(ours_model)
    ours = SGD(_groups(ours_model), lr=LRS[0], momentum=momentum, weight_decay=5e-4, nesterov=nesterov)
    ref = torch.optim.SGD(_groups(ref_model), lr=LRS[0], momentum=momentum, weight_decay=5e-4,
                          nesterov=nesterov)
    assert [g["weight_decay"] for g in ours.param_groups] == [1e-2, 5e-4]

    start = [p.detach().clone() for p in ours_model.parameters()]
    for step, lr in enumerate(LRS):
        for opt in (ours, ref):
            for group in opt.param_groups:
                group["lr"] = lr  # as the trainer does, once per epoch
            opt.zero_grad()
        _backward(ours_model, step)
        _backward(ref_model, step)
        ours.step()
        ref.step()
        for (name, p), q in zip(ours_model.named_parameters(), ref_model.parameters(), strict=True):
            assert_close(p, q, rtol=1e-6, atol=1e-6, msg=f"step {step} {name}")
    moved = max((p.detach() - s).abs().max().item()
                for p, s in zip(ours_model.parameters(), start, strict=True))
    assert moved > 1e-2  # the comparison is not between two parameter sets that never moved


def test_sgd_first_step_by_hand():
    """One parameter, written out: d = g + wd p; buf = d; p -= lr (d + m buf if nesterov else buf)."""
    for nesterov, expected_update in [(False, 1.0), (True, 1.9)]:
        p = torch.tensor([2.0], requires_grad=True)
        opt = SGD([{"params": [p]}], lr=0.5, momentum=0.9, weight_decay=0.25, nesterov=nesterov)
        p.grad = torch.tensor([0.5])  # d = 0.5 + 0.25 * 2 = 1.0
        opt.step()
        assert p.item() == pytest.approx(2.0 - 0.5 * expected_update)
        # Second step: p = 1.5 (or 1.05); d = 0.5 + 0.25 p; buf = 0.9 * 1 + d.
        p_before = p.item()
        d = 0.5 + 0.25 * p_before
        buf = 0.9 * 1.0 + d
        p.grad = torch.tensor([0.5])
        opt.step()
        update = d + 0.9 * buf if nesterov else buf
        assert p.item() == pytest.approx(p_before - 0.5 * update, rel=1e-6)


def test_sgd_skips_parameters_without_gradient_and_zero_grad_clears():
    model = _model()
    ref_model = copy.deepcopy(model)
    ours = SGD([{"params": list(model.parameters())}], lr=0.1, momentum=0.9, weight_decay=5e-4)
    ref = torch.optim.SGD(list(ref_model.parameters()), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for step in range(3):
        ours.zero_grad()
        ref.zero_grad()
        assert all(p.grad is None for p in model.parameters())
        for m in (model, ref_model):
            x, y = _batch(step)
            ((m[0](x)[:, :3] - y) ** 2).mean().backward()  # the second layer gets no gradient
        ours.step()
        ref.step()
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert_close(p, q, rtol=1e-6, atol=1e-6)
    assert_close(model[2].weight, _model()[2].weight)  # untouched, weight decay included


def test_sgd_state_dict_resumes_identically():
    straight, resumed = _model(), _model()
    opt = SGD(_groups(straight), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for step in range(5):
        opt.zero_grad()
        _backward(straight, step)
        opt.step()

    first = SGD(_groups(resumed), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for step in range(2):
        first.zero_grad()
        _backward(resumed, step)
        first.step()
    state = first.state_dict()
    second = SGD(_groups(resumed), lr=0.3, momentum=0.9, weight_decay=5e-4, nesterov=True)
    second.load_state_dict(state)
    assert [g["lr"] for g in second.param_groups] == [0.1, 0.1]
    for step in range(2, 5):
        second.zero_grad()
        _backward(resumed, step)
        second.step()
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert_close(p, q, rtol=0, atol=0)


def _with_grads(scale: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    ours = [torch.zeros(s, requires_grad=True) for s in shapes]
    ref = [torch.zeros(s, requires_grad=True) for s in shapes]
    for a, b in zip(ours, ref, strict=True):
        g = torch.randn(a.shape, generator=gen) * scale
        a.grad, b.grad = g.clone(), g.clone()
    return ours, ref


@pytest.mark.parametrize("scale,max_norm", [(5.0, 1.0), (1.0, 10.0), (0.01, 1.0), (3.0, 0.5)])
def test_clip_grad_norm_matches_torch(scale, max_norm):
    ours, ref = _with_grads(scale)
    original = [p.grad.clone() for p in ours]
    norm_by_hand = torch.sqrt(sum((g.double() ** 2).sum() for g in original)).item()
    got = clip_grad_norm(ours, max_norm)
    want = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert got.item() == pytest.approx(norm_by_hand, rel=1e-6)
    for a, b in zip(ours, ref, strict=True):
        assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-7)
    new_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in ours)).item()
    if norm_by_hand > max_norm:
        assert new_norm == pytest.approx(max_norm, rel=1e-5)
    else:  # no clipping: gradients unchanged
        assert new_norm == pytest.approx(norm_by_hand, rel=1e-7)
        for a, g in zip(ours, original, strict=True):
            assert_close(a.grad, g, rtol=0, atol=0)


def test_clip_grad_norm_ignores_parameters_without_grad():
    ours, ref = _with_grads(5.0)
    ours.append(torch.zeros(3, requires_grad=True))
    ref.append(torch.zeros(3, requires_grad=True))
    got = clip_grad_norm(ours, 1.0)
    want = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert ours[-1].grad is None
