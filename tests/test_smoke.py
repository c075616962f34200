"""Every (model, loss) pair through the trainer's own pieces at the paper's input sizes: two SGD
steps on CPU with batch 2, the real augmentations, class counts and semantic class embeddings.

Checks output shapes, finite losses and that every parameter (of the model and of the loss's own
head) moves. Models and inputs are channels_last, as the trainer runs them on CUDA (on CPU it also
halves ResNet-50's time). The ResNets are marked slow (ResNet-50 at 448 px takes about 10 s a pair
on 2 cores, ResNet-110 about 2 s); small_cnn runs in the fast suite. Each model is built once and
reset to its initial weights for every loss.
"""

from __future__ import annotations

import pytest
import torch

from benchmark.augment import augment, eval_view
from benchmark.hierarchy import Hierarchy, embed_hierarchy
from benchmark.losses import LOSSES, SEMANTIC, build_loss
from benchmark.models import build_model
from benchmark.train import build_optimizer, train_step

C = 5
CLASS_COUNTS = [3, 1, 4, 1, 5]
# Model -> (channels, stored size, augment settings): the photo pipeline crops 448 of 512.
MODELS = {
    "small_cnn": (1, 8, {"max_shift": 1}),
    "cifar_resnet110_wide": (3, 32, {"hflip": True, "max_shift": 5, "shift_fill": "nearest"}),
    "resnet50": (3, 512, {"crop": 448, "hflip": True, "erase": {"p": 1.0, "area": [0.02, 0.3],
                                                                  "aspect": [0.3, 3.33]}}),
}
TRAIN = {"lr": 0.01, "grad_clip_norm": 10.0,
         "optimizer": {"momentum": 0.9, "weight_decay": 4e-4, "weight_decay_on": "kernels"}}
_built: dict[str, tuple[torch.nn.Module, dict]] = {}


def _model(name: str) -> torch.nn.Module:
    """The model `name`, built once per session and reset to its initial weights on every call."""
    if name not in _built:
        torch.manual_seed(0)
        model = build_model(name, MODELS[name][0], C).to(memory_format=torch.channels_last)
        _built[name] = model, {k: v.clone() for k, v in model.state_dict().items()}
    model, initial = _built[name]
    model.load_state_dict(initial)
    return model


def _semantic_embeddings() -> torch.Tensor:
    """Unitsphere embeddings of 5 classes under root 9 -> {7 -> {0, 1}, 8 -> {2, 3, 4}}."""
    edges = [(9, 7), (9, 8), (7, 0), (7, 1), (8, 2), (8, 3), (8, 4)]
    return torch.from_numpy(embed_hierarchy(Hierarchy.from_edges(edges, num_classes=C))).float()


PAIRS = [
    pytest.param(model, loss, id=f"{model}-{loss}", marks=[pytest.mark.slow] if model != "small_cnn" else [])
    for model in MODELS for loss in sorted(LOSSES)
]


@pytest.mark.parametrize("model_name,loss_name", PAIRS)
def test_two_steps_at_real_input_size(model_name, loss_name):
    channels, size, aug = MODELS[model_name]
    model = _model(model_name)
    extra = {"class_embeddings": _semantic_embeddings()} if loss_name in SEMANTIC else {}
    loss = build_loss(loss_name, num_classes=C, embed_dim=C, class_counts=CLASS_COUNTS, **extra)
    optimizer = build_optimizer(model, loss, TRAIN)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, channels, size, size), dtype=torch.uint8, generator=generator)
    y = torch.tensor([1, 4])
    before = {name: p.detach().clone() for name, p in [*model.named_parameters(), *loss.named_parameters()]}

    model.train()
    loss.train()
    for _ in range(2):
        x = ((augment(images, aug, generator) - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)
        crop = aug.get("crop", size)
        assert x.shape == (2, channels, crop, crop)
        value = train_step(model, loss, optimizer, x, y, TRAIN["grad_clip_norm"])
        assert value.ndim == 0 and torch.isfinite(value), value

    moved = {name: not torch.equal(p.detach(), before[name])
             for name, p in [*model.named_parameters(), *loss.named_parameters()]}
    assert all(moved.values()), [name for name, m in moved.items() if not m]
    model.eval()
    loss.eval()
    with torch.no_grad():
        out = model(((eval_view(images, aug) - 127.5) / 64.0).contiguous(memory_format=torch.channels_last))
        assert out.shape == (2, C) and torch.isfinite(out).all()
        assert loss.scores(out).shape == (2, C)
