"""SLA (Lee, Hwang, Shin, ICML 2020): rotation layout, joint labels, AG/SI scores, SD objective by hand."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.tensors import assert_close

from benchmark.methods.sla import aggregated_scores, joint_labels, rotations, single_scores, sla_loss, sla_sd_loss


def _log_softmax(row: list[float]) -> list[float]:
    log_z = math.log(sum(math.exp(v) for v in row))
    return [v - log_z for v in row]


def test_rotations_order_and_direction():
    # Two 1-channel 2x2 images; image 1 is image 0 + 10, so rows can be told apart.
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[11.0, 12.0], [13.0, 14.0]]]])
    r = rotations(x)
    assert r.shape == (8, 1, 2, 2)
    # rot90 counter-clockwise, k quarter turns: [[1,2],[3,4]] -> [[2,4],[1,3]] -> [[4,3],[2,1]] -> [[3,1],[4,2]].
    expected_0 = [[[1, 2], [3, 4]], [[2, 4], [1, 3]], [[4, 3], [2, 1]], [[3, 1], [4, 2]]]
    assert r[:4, 0].tolist() == expected_0                     # sample-major: rows 0..3 are image 0
    assert (r[4:, 0] - 10).tolist() == expected_0              # rows 4..7 are image 1
    with pytest.raises(ValueError, match="square"):
        rotations(torch.zeros(1, 3, 4, 5))


def test_joint_labels_class_major():
    # y = (1, 0), M = 4: image 0 -> 1*4 + j = 4..7, image 1 -> 0..3.
    assert joint_labels(torch.tensor([1, 0])).tolist() == [4, 5, 6, 7, 0, 1, 2, 3]
    assert joint_labels(torch.tensor([2]), m=2).tolist() == [4, 5]


# One image, C = 2, M = 4: rows j = logits on t_j(x); columns (c, j') in order
# (0,0) (0,1) (0,2) (0,3) (1,0) (1,1) (1,2) (1,3). Decoys 9 and 7 sit where j' != j.
JOINT = [
    [2.0, 0.0, 0.0, 0.0, 1.0, 9.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0],
    [7.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0, 0.0],
    [0.0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.0, 0.5],
]
# a_0 = (2 + 1 + 0.5 + 1.5) / 4 = 1.25;  a_1 = (1 + 3 + 2 + 0.5) / 4 = 1.625.
AGG = [1.25, 1.625]


def test_aggregated_scores_two_class_example():
    a = aggregated_scores(torch.tensor(JOINT), num_classes=2)
    assert a.shape == (1, 2)
    assert a[0].tolist() == pytest.approx(AGG)


def test_aggregated_scores_keeps_images_apart():
    # Image 1's logits are image 0's + 100 on class 1's columns: only its a_1 moves, by 100.
    second = [row[:4] + [v + 100 for v in row[4:]] for row in JOINT]
    a = aggregated_scores(torch.tensor(JOINT + second), num_classes=2)
    assert a.flatten().tolist() == pytest.approx(AGG + [AGG[0], AGG[1] + 100])


def test_single_scores_take_rotation_zero_columns():
    # z_(c,0)(x) = row 0, columns (0,0) and (1,0): [2, 1]. SI predicts class 0 where AG predicts class 1.
    s = single_scores(torch.tensor(JOINT)[::4], num_classes=2)
    assert s.tolist() == [[2.0, 1.0]]
    assert s.argmax(1).item() == 0 and aggregated_scores(torch.tensor(JOINT), 2).argmax(1).item() == 1


def test_sla_sd_loss_by_hand_and_teacher_is_detached():
    y = torch.tensor([0])
    u = [0.0, 1.0]
    # CE_joint: mean over rows j of -log softmax(row)_{0*4 + j}.
    ce_joint = sum(-_log_softmax(row)[j] for j, row in enumerate(JOINT)) / 4
    ce_single = math.log(1 + math.e)  # -log softmax([0, 1])_0
    p = [math.exp(v) for v in _log_softmax(AGG)]
    q = [math.exp(v) for v in _log_softmax(u)]
    kl = sum(pc * math.log(pc / qc) for pc, qc in zip(p, q, strict=True))  # T = 1
    joint = torch.tensor(JOINT, requires_grad=True)
    single = torch.tensor([u], requires_grad=True)
    loss = sla_sd_loss(joint, single, y, num_classes=2)
    assert loss.item() == pytest.approx(ce_joint + ce_single + kl, rel=1e-6)
    assert sla_loss(torch.tensor(JOINT), y).item() == pytest.approx(ce_joint, rel=1e-6)
    # The KL term must not reach the joint head: its gradient is that of CE_joint alone.
    loss.backward()
    plain = torch.tensor(JOINT, requires_grad=True)
    sla_loss(plain, y).backward()
    assert_close(joint.grad, plain.grad)
    # u's gradient is that of CE + KL: (softmax(u) - onehot(y)) + (softmax(u) - softmax(a)).
    expected_u = [2 * q[c] - (1.0 if c == 0 else 0.0) - p[c] for c in range(2)]
    assert single.grad[0].tolist() == pytest.approx(expected_u, rel=1e-5)
