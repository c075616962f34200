"""Major-to-minor translation (Kim, Jeong, Shin, "M2m: Imbalanced Classification via Major-to-minor
Translation", CVPR 2020, arXiv 2004.00431), as batched generation for one training batch.

After the deferral point the loader over-samples to class balance. In such a batch, a sample of
class k is picked for replacement with probability 1 - N_k / N_max (N = training images per
class). For each picked sample a seed x0 of class k0 is drawn from the same batch with
    Q(k0 | k) proportional to 1 - beta^((N_k0 - N_k)+)        (per seed sample; 0 for N_k0 <= N_k)
and translated to class k by T steps of normalised gradient descent, from a random start
x0 + delta (uniform noise scaled to ||delta||_2 <= 0.5, clamped to [0, 1]):
    x <- clamp(x - eta grad L / ||grad L||_2, 0, 1),   L(x) = CE(g(x), k) + lam f_k0(x)
g is the fixed baseline classifier (plain ERM on the same imbalanced data), f the classifier being
trained and f_k0 its seed-class logit (lowering it keeps the result from looking like k0 to f).
x* is accepted if softmax(g(x*))_k >= gamma and a Bernoulli(1 - beta^((N_k0 - N_k)+)) draw succeeds;
a rejected one leaves the original over-sampled sample of class k in the batch. A picked sample
with no valid seed in the batch (no seed class larger than k, e.g. k is the largest class) stays too.

Defaults from the official code: T = 10, eta = 0.1, lam = 0.5, beta = 0.999; gamma = 0.99
(config.py; its run.sh uses 0.9; the paper's value is unverified). The official random start
renormalises the noise per channel across the whole batch (`renorm(dim=1)`); here it is per
image, the stated intent. Images are in [0, 1] (divide 0..255 pixels by 255); g and f are
callables images -> logits that normalise inside and are in eval mode; their parameters get no
gradient (only the images are differentiated). `M2m` (at the end) is the training method built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.teacher import WithTeacher

Classifier = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Generation:
    """Translated samples for positions `index` of the over-sampled batch.

    images[g] is x* for batch position index[g], of class targets[g] (= the batch's target
    there), translated from a seed of class seed_classes[g]. Only accepted ones replace the batch
    sample; `replace_accepted` builds the batch to train on, whose targets are unchanged.
    """

    index: torch.Tensor         # (G,) long, positions in the over-sampled batch
    images: torch.Tensor        # (G, ...) x*, in [0, 1]
    targets: torch.Tensor       # (G,) long, target class k
    seed_classes: torch.Tensor  # (G,) long, seed class k0
    p_accept: torch.Tensor      # (G,) 1 - beta^((N_k0 - N_k)+)
    accepted: torch.Tensor      # (G,) bool


def _counts(class_counts: Sequence[int] | torch.Tensor, device: torch.device) -> torch.Tensor:
    counts = torch.as_tensor(class_counts, dtype=torch.float64, device=device)
    if counts.ndim != 1 or (counts < 1).any():
        raise ValueError("M2m needs one positive training-image count per class")
    return counts


def acceptance_probability(seed_counts: torch.Tensor, target_counts: torch.Tensor, beta: float) -> torch.Tensor:
    """1 - beta^((N_k0 - N_k)+), elementwise (broadcasting): 0 unless the seed class is larger."""
    if not 0.0 < beta < 1.0:
        raise ValueError(f"M2m beta must lie in (0, 1), got {beta}")
    gap = (seed_counts - target_counts).clamp(min=0)
    return 1.0 - torch.pow(torch.as_tensor(beta, dtype=gap.dtype, device=gap.device), gap)


def _seed_weights(counts: torch.Tensor, batch_counts: torch.Tensor, beta: float) -> torch.Tensor:
    """(C, C) [k, k0] = m_k0 (1 - beta^((N_k0 - N_k)+)), m_k0 = seed samples of class k0 in the batch."""
    return batch_counts.to(counts.dtype)[None, :] * acceptance_probability(counts[None, :], counts[:, None], beta)


def seed_class_distribution(
    class_counts: Sequence[int] | torch.Tensor,
    beta: float,
    batch_class_counts: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """(C, C) Q[k, k0] = Q(k0 | k), rows summing to 1, or all 0 where no class is larger than k.

    With m_k0 seed samples of class k0 in the batch (default one each), Q(k0 | k) is proportional to
    m_k0 (1 - beta^((N_k0 - N_k)+)): drawing one seed sample of the batch with weight
    1 - beta^((N_k0 - N_k)+) is drawing its class from Q, then a sample of that class uniformly.
    """
    counts = _counts(class_counts, torch.device("cpu"))
    m = torch.ones_like(counts) if batch_class_counts is None else torch.as_tensor(batch_class_counts).cpu()
    weights = _seed_weights(counts, m, beta)
    total = weights.sum(dim=1, keepdim=True)
    return torch.where(total > 0, weights / total.clamp(min=1e-300), torch.zeros_like(weights))


def replacement_mask(
    targets: torch.Tensor, class_counts: Sequence[int] | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """(B,) bool: sample of class k picked for replacement with probability 1 - N_k / N_max."""
    counts = _counts(class_counts, targets.device)
    p_replace = 1.0 - counts[targets] / counts.max()
    draw = torch.rand(targets.shape[0], device=targets.device, generator=generator, dtype=torch.float64)
    return draw < p_replace


def random_start(x: torch.Tensor, generator: torch.Generator, radius: float = 0.5) -> torch.Tensor:
    """clamp(x + delta, 0, 1), delta uniform in [-0.5, 0.5) per pixel, scaled per image to ||delta||_2 <= radius."""
    noise = torch.rand(x.shape, device=x.device, generator=generator, dtype=x.dtype) - 0.5
    norms = noise.flatten(1).norm(dim=1).clamp(min=1e-12)
    scale = (radius / norms).clamp(max=1.0).view(-1, *([1] * (x.ndim - 1)))
    return (x + noise * scale).clamp(0.0, 1.0)


def translate(
    g: Classifier,
    f: Classifier,
    x: torch.Tensor,
    seed_classes: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 10,
    step_size: float = 0.1,
    lam: float = 0.5,
) -> torch.Tensor:
    """T steps of x <- clamp(x - eta grad L / ||grad L||_2, 0, 1), L = CE(g(x), k) + lam f_k0(x); detached."""
    x = x.detach()
    with torch.enable_grad():
        for _ in range(steps):
            x = x.clone().requires_grad_(True)
            # Summed over the batch: each image's gradient is that of its own loss (g, f in eval
            # mode treat images independently), and the per-image normalisation removes any scale.
            ce = F.cross_entropy(g(x).float(), targets, reduction="sum")
            seed_logit = f(x).float().gather(1, seed_classes[:, None]).sum()
            (grad,) = torch.autograd.grad(ce + lam * seed_logit, [x])
            norms = grad.flatten(1).norm(dim=1).view(-1, *([1] * (x.ndim - 1)))
            x = (x - step_size * grad / (norms + 1e-10)).clamp(0.0, 1.0).detach()
    return x


def accept(
    g: Classifier,
    images: torch.Tensor,
    targets: torch.Tensor,
    p_accept: torch.Tensor,
    gamma: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(G,) bool: softmax(g(x*))_k >= gamma AND a Bernoulli(p_accept) draw succeeds."""
    with torch.no_grad():
        confidence = F.softmax(g(images).float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    draw = torch.rand(targets.shape[0], device=targets.device, generator=generator, dtype=torch.float64)
    return (confidence >= gamma) & (draw < p_accept.to(torch.float64))


def generate(
    g: Classifier,
    f: Classifier,
    images: torch.Tensor,
    targets: torch.Tensor,
    class_counts: Sequence[int] | torch.Tensor,
    generator: torch.Generator,
    beta: float = 0.999,
    gamma: float = 0.99,
    lam: float = 0.5,
    step_size: float = 0.1,
    steps: int = 10,
    noise_radius: float = 0.5,
) -> Generation:
    """M2m for one over-sampled batch (images in [0, 1], targets (B,)); every draw from `generator`.

    Draw order: replacement mask, seed class, seed sample within the class, random start,
    acceptance. noise_radius 0 skips the random start.
    """
    counts = _counts(class_counts, targets.device)
    index = torch.nonzero(replacement_mask(targets, counts, generator)).flatten()
    batch_counts = torch.bincount(targets, minlength=counts.numel())
    # Class-level seed weights (G, C) instead of one weight per batch sample (G, B): same draw, less memory.
    q = _seed_weights(counts, batch_counts, beta)[targets[index]]
    has_seed = q.sum(dim=1) > 0
    index, q = index[has_seed], q[has_seed]
    if index.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=targets.device)
        return Generation(empty, images[:0], empty, empty, q.new_zeros(0), empty.bool())
    seed_classes = torch.multinomial(q, 1, replacement=True, generator=generator).squeeze(1)
    # Then one sample of the chosen class, uniformly: the batch sorted by class, class c at
    # positions first[c] .. first[c] + m_c - 1.
    by_class = torch.argsort(targets, stable=True)
    first = torch.cumsum(batch_counts, 0) - batch_counts
    m = batch_counts[seed_classes]
    offset = (torch.rand(index.numel(), device=targets.device, generator=generator, dtype=torch.float64) * m).long()
    choice = by_class[first[seed_classes] + torch.minimum(offset, m - 1)]
    p_accept = acceptance_probability(counts[seed_classes], counts[targets[index]], beta)
    x0, gen_targets = images[choice], targets[index]
    if noise_radius > 0:
        x0 = random_start(x0, generator, noise_radius)
    x_star = translate(g, f, x0, seed_classes, gen_targets, steps, step_size, lam)
    accepted = accept(g, x_star, gen_targets, p_accept, gamma, generator)
    return Generation(index, x_star, gen_targets, seed_classes, p_accept, accepted)


def replace_accepted(images: torch.Tensor, generation: Generation) -> torch.Tensor:
    """The batch to train on: accepted x* at their positions, every other sample unchanged (targets too)."""
    out = images.clone()
    out[generation.index[generation.accepted]] = generation.images[generation.accepted].to(out.dtype)
    return out


# ----------------------------------------------------------------------------------- the method


class M2m(WithTeacher):
    """Cross-entropy training of f; from the deferred start epoch on, each batch is drawn over-sampled to
    class balance and its picked samples are replaced by accepted translations (`generate`).

    g is the teacher, a plain CE cell on the same long-tailed subset; f is this method's own network,
    in eval mode while it generates. Over-sampling draws the batch with replacement, each image of
    class k with weight 1 / N_k (as the official loader's WeightedRandomSampler), from the cell's
    training subset (`context.extra["images"]`, benchmark/train/build.py: TrainingImages), with the
    cell's augmentation. Every draw comes from the cell's augmentation generator, whose state a
    checkpoint saves, so a resumed cell generates the same images. Before the start epoch the batch
    is the cell's ordinary one (the official code's deferred re-sampling, --warm).
    """

    shared = ("teacher", "images")

    def __init__(self, model: nn.Module, teacher, images, class_counts: list[int], start_epoch: int,
                 options: dict) -> None:
        super().__init__(model, teacher)
        self.__dict__["images"] = images  # a view of the cell's data, not state
        self.class_counts = list(class_counts)
        self.start_epoch = start_epoch  # 0-based: epochs before it train on the ordinary batches
        self.options = options
        self.last_generation: Generation | None = None

    @classmethod
    def build(cls, settings: dict, context, make_model) -> M2m:
        model = make_model(context.num_classes)
        epochs = context.extra.get("epochs", 0)
        options = {k: settings[k] for k in ("beta", "gamma", "lam", "step_size", "steps", "noise_radius")}
        return cls(model, cls.teacher_of(context), context.extra.get("images"), context.class_counts,
                   round(settings["start"] * epochs), options)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.network(x).float(), y)

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, epoch: int):
        if epoch < self.start_epoch:
            return x, y
        teacher, images = self.needs_teacher(), self.images
        if images is None:
            raise RuntimeError("M2m needs the cell's training images (context.extra['images']) to over-sample")
        x, y = images.batch(self.balanced_indices(x.shape[0]))
        was_training = self.model.training
        self.model.eval()
        try:
            generation = generate(lambda u: teacher.scores(images.from_unit(u)),
                                  lambda u: self.network(images.from_unit(u)),
                                  images.to_unit(x), y, self.class_counts, images.generator, **self.options)
        finally:
            self.model.train(was_training)
        self.last_generation = generation
        keep = generation.accepted
        if bool(keep.any()):
            x = x.clone()
            x[generation.index[keep]] = images.from_unit(generation.images[keep]).to(x.dtype)
        return x, y

    def balanced_indices(self, size: int) -> torch.Tensor:
        """`size` image indices of the training subset drawn with replacement, weight 1 / N_k per image."""
        images = self.images
        labels = images.labels()
        counts = torch.as_tensor(self.class_counts, dtype=torch.float32, device=labels.device)
        choice = torch.multinomial(1.0 / counts[labels], size, replacement=True, generator=images.generator)
        return images.idx[choice]
