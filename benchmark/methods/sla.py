"""Self-supervised label augmentation with rotations (Lee, Hwang, Shin, "Self-supervised Label
Augmentation via Input Transformations", ICML 2020, arXiv 1910.05872).

Each image x_i is shown in M = 4 rotations t_j (rot90 by j quarter turns, j = 0..3) and the network
predicts the joint label (class c, rotation j) with a C*M-way head. Layouts, the official code's:
  batch    sample-major: row i*M + j of `rotations(x)` is t_j(x_i)
  labels   class-major: joint label of (c, j) is c*M + j, so column c*M + j of the joint logits
Inference: SLA+AG a_c(x) = (1/M) sum_j z_{(c,j)}(t_j(x)) (averaged logits); SLA+SI z_{(c,0)}(x).
SLA+SD adds a C-way head u on the shared features, trained towards a: see `sla_sd_loss`.
The methods `SLA` (predicts with a) and `SLASelfDistillation` (predicts with u) are at the end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.base import Method, MethodContext, model_parameter_groups
from benchmark.methods.distill import soft_target_kl

M = 4  # rotations by 0, 90, 180 and 270 degrees


def rotations(x: torch.Tensor) -> torch.Tensor:
    """(N, C, S, S) -> (4N, C, S, S); row i*4 + j = torch.rot90(x_i, j, dims=(H, W)), counter-clockwise."""
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"SLA rotations need square images (N, C, S, S), got shape {tuple(x.shape)}")
    return torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(M)], dim=1).flatten(0, 1)


def joint_labels(y: torch.Tensor, m: int = M) -> torch.Tensor:
    """(N,) -> (N*m,); entry i*m + j = y_i * m + j (class-major joint label, sample-major rows)."""
    return (y[:, None] * m + torch.arange(m, device=y.device)).flatten()


def _by_class_and_transform(joint_logits: torch.Tensor, num_classes: int, m: int) -> torch.Tensor:
    if joint_logits.shape[1] != num_classes * m:
        raise ValueError(f"joint logits have {joint_logits.shape[1]} columns, expected {num_classes} x {m}")
    return joint_logits.float().reshape(joint_logits.shape[0], num_classes, m)


def aggregated_scores(joint_logits: torch.Tensor, num_classes: int, m: int = M) -> torch.Tensor:
    """SLA+AG, (N*m, C*m) logits of the transformed batch -> (N, C): a_c = mean_j z_{(c,j)}(t_j(x))."""
    if joint_logits.shape[0] % m:
        raise ValueError(f"{joint_logits.shape[0]} rows is not a whole number of {m}-transform groups")
    z = _by_class_and_transform(joint_logits, num_classes, m).reshape(-1, m, num_classes, m)
    # z[i, j, c, j'] = logit of (c, j') on t_j(x_i); keep the rotation the image actually had, j' = j.
    return torch.diagonal(z, dim1=1, dim2=3).mean(dim=2)


def single_scores(joint_logits: torch.Tensor, num_classes: int, m: int = M) -> torch.Tensor:
    """SLA+SI, (N, C*m) logits of the untransformed images -> (N, C): z_{(c,0)}(x).

    From the logits of a transformed batch pass `joint_logits[::m]` (the rotation-0 rows).
    """
    return _by_class_and_transform(joint_logits, num_classes, m)[:, :, 0]


def sla_loss(joint_logits: torch.Tensor, y: torch.Tensor, m: int = M) -> torch.Tensor:
    """CE over all N*m (image, transform) pairs against the joint labels (the SLA+AG / SLA+SI objective)."""
    return F.cross_entropy(joint_logits.float(), joint_labels(y, m))


def sla_sd_loss(
    joint_logits: torch.Tensor,
    single_logits: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    m: int = M,
    temperature: float = 1.0,
) -> torch.Tensor:
    """SLA+SD: CE_joint + CE(u(x), y) + T^2 KL(softmax(a.detach() / T) || softmax(u(x) / T)), batchmean.

    joint_logits: (N*m, C*m) on `rotations(x)`; single_logits: u(x), the C-way head on the
    untransformed images, (N, C) (from u on the rotated batch: `u[::m]`); a = `aggregated_scores`,
    detached, so the joint head only teaches. T = 1 and all weights 1 as in the paper. Predict argmax u(x).
    """
    teacher = aggregated_scores(joint_logits, num_classes, m).detach()
    joint = sla_loss(joint_logits, y, m)
    single = F.cross_entropy(single_logits.float(), y)
    return joint + single + soft_target_kl(single_logits, teacher, temperature)


# ----------------------------------------------------------------------------------- the methods


class SLA(Method):
    """SLA+AG: a C*M-way head on the four rotations of each image (batched on the device, one forward
    pass of 4B images); predictions average the joint logits over the rotations (`aggregated_scores`)."""

    supports_mixing = False  # joint labels of mixed images are not defined by the paper

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__(model, None)
        self.num_classes = num_classes

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model) -> SLA:  # noqa: ARG003 (none)
        return cls(make_model(context.num_classes * M), context.num_classes)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sla_loss(self.network(rotations(x)), y)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return aggregated_scores(self.network(rotations(x)), self.num_classes)

    def parameter_groups(self, optimizer: dict) -> list[dict]:
        return model_parameter_groups(self, optimizer["weight_decay_on"])


class SLASelfDistillation(SLA):
    """SLA+SD: SLA plus a C-way head u on the same pooled features, trained with `sla_sd_loss` (towards
    the labels and the detached aggregated joint scores); u alone predicts, from one unrotated pass."""

    def __init__(self, model: nn.Module, num_classes: int, *, temperature: float) -> None:
        super().__init__(model, num_classes)
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Linear):
            raise TypeError(f"SLA+SD needs a model whose `head` is a linear layer, got {type(head).__name__}")
        self.single = nn.Linear(head.in_features, num_classes)
        self.temperature = temperature

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model) -> SLASelfDistillation:
        return cls(make_model(context.num_classes * M), context.num_classes, temperature=settings["temperature"])

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features = self.model.features(rotations(x))
        single = self.single(features[::M])  # the rotation-0 rows: u(x) on the images as given
        return sla_sd_loss(self.model.head(features), single, y, self.num_classes, M, self.temperature)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.single(self.model.features(x))
