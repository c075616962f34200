"""Knowledge distillation: Hinton KD on logits and relational KD (RKD) on embeddings, and the two
methods that train with them against a teacher cell (`KnowledgeDistillation`, `RelationalDistillation`).

In the loss functions teachers are given as tensors (logits or embeddings of the same batch) and
are always detached, so a teacher computed without no_grad cannot receive gradients by accident;
the methods run their teacher in eval mode (benchmark/methods/teacher.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods import Method, MethodContext
from benchmark.methods.teacher import WithTeacher


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 KL(softmax(z_t / T) || softmax(z_s / T)), summed over classes and averaged over the batch.

    The gradient with respect to z_s is T (softmax(z_s / T) - softmax(z_t / T)) / B; for large T this
    tends to (z_s - z_t - mean over classes) / (C B), independent of T: the T^2 keeps the soft term's
    weight fixed when T changes (Hinton, Vinyals, Dean, arXiv 1503.02531, Sec. 2).
    """
    if temperature <= 0:
        raise ValueError(f"distillation temperature must be positive, got {temperature}")
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    return temperature**2 * F.kl_div(log_p_student, p_teacher, reduction="batchmean")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.9,
    temperature: float = 4.0,
) -> torch.Tensor:
    """L = (1 - alpha) CE(z_s, y) + alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)), batch means.

    Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", arXiv 1503.02531. The
    paper fixes no alpha or T; 0.9 and 4 are common third-party defaults, not the paper's.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation alpha must lie in [0, 1], got {alpha}")
    hard = F.cross_entropy(student_logits.float(), target)
    return (1.0 - alpha) * hard + alpha * soft_target_kl(student_logits, teacher_logits, temperature)


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B) Euclidean distances; squared distances clamped at 1e-12 before the sqrt, diagonal 0.

    From the Gram matrix (O(B^2) memory, not O(B^2 D)); the clamp keeps sqrt's gradient finite where
    rounding makes a squared distance 0 or negative.
    """
    e = embeddings.float()
    squared_norms = (e * e).sum(dim=1)
    squared = (squared_norms[:, None] + squared_norms[None, :] - 2.0 * e @ e.T).clamp(min=1e-12)
    off_diagonal = 1.0 - torch.eye(e.shape[0], device=e.device, dtype=e.dtype)
    return squared.sqrt() * off_diagonal


def _normalised_distances(embeddings: torch.Tensor) -> torch.Tensor:
    d = pairwise_distances(embeddings)
    return d / d[d > 0].mean()


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance-wise RKD: mean over the B^2 pairs of Huber(d_S(i, j) - d_T(i, j)), threshold 1.

    d(i, j) = ||e_i - e_j|| / mu with mu the mean of the positive off-diagonal distances of the
    batch, taken separately for student and teacher, so the loss ignores the embeddings' scale.
    Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019, arXiv 1904.05068, Eq. 4-6.
    """
    with torch.no_grad():
        d_teacher = _normalised_distances(teacher.detach())
    return F.smooth_l1_loss(_normalised_distances(student), d_teacher, beta=1.0)


def angle_potentials(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B, B) cos of the angle at e_i: <(e_j - e_i) / ||e_j - e_i||, (e_k - e_i) / ||e_k - e_i||>.

    Entry [i, j, k]; a zero difference (j = i or k = i) normalises to the zero vector, so its cosines are 0.
    Memory O(B^2 D + B^3).
    """
    e = embeddings.float()
    directions = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # [i, j] = unit(e_j - e_i)
    return directions @ directions.transpose(1, 2)


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD: mean over all B^3 triplets of Huber(cos_S(i, j, k) - cos_T(i, j, k)), threshold 1.

    Park et al., CVPR 2019, arXiv 1904.05068, Eq. 7-9.
    """
    with torch.no_grad():
        cos_teacher = angle_potentials(teacher.detach())
    return F.smooth_l1_loss(angle_potentials(student), cos_teacher, beta=1.0)


def rkd_loss(
    student: torch.Tensor, teacher: torch.Tensor, distance_weight: float = 1.0, angle_weight: float = 2.0
) -> torch.Tensor:
    """lambda_D * distance-wise + lambda_A * angle-wise RKD; weights 1 and 2 as the official CUB recipe."""
    return distance_weight * rkd_distance_loss(student, teacher) + angle_weight * rkd_angle_loss(student, teacher)


# ----------------------------------------------------------------------------------- the methods


class KnowledgeDistillation(WithTeacher):
    """Hinton KD: the student's logits trained with `kd_loss` against its teacher's class scores.

    The teacher's `scores` are its logits for every cross-entropy method (softmax CE, a KD student of an
    earlier generation); for another teacher they are whatever its argmax predicts from. Chaining KD
    students (each the teacher of the next) gives born-again / self-distillation generations.
    """

    def __init__(self, model: nn.Module, teacher: Method | None, *, alpha: float, temperature: float) -> None:
        super().__init__(model, teacher)
        self.alpha, self.temperature = alpha, temperature

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model) -> KnowledgeDistillation:
        model = make_model(context.num_classes)
        return cls(model, cls.teacher_of(context), alpha=settings["alpha"], temperature=settings["temperature"])

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        teacher = self.needs_teacher()
        with torch.no_grad():
            target_scores = teacher.scores(x)
        return kd_loss(self.network(x), target_scores, y, self.alpha, self.temperature)


class RelationalDistillation(WithTeacher):
    """Cross-entropy on the labels plus distance- and angle-wise RKD between the student's and the teacher's
    pooled features (the embeddings before the classifier), as Park et al.'s classification setting
    without its extra Hinton term."""

    def __init__(self, model: nn.Module, teacher: Method | None, *, distance_weight: float,
                 angle_weight: float) -> None:
        super().__init__(model, teacher)
        self.distance_weight, self.angle_weight = distance_weight, angle_weight

    @classmethod
    def build(cls, settings: dict, context: MethodContext, make_model) -> RelationalDistillation:
        model = make_model(context.num_classes)
        return cls(model, cls.teacher_of(context), distance_weight=settings["distance_weight"],
                   angle_weight=settings["angle_weight"])

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        teacher = self.needs_teacher()
        with torch.no_grad():
            target_features = teacher.model.features(x)
        features = self.model.features(x)
        task = F.cross_entropy(self.model.head(features).float(), y)
        return task + rkd_loss(features, target_features, self.distance_weight, self.angle_weight)
