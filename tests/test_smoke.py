"""Every (model, registered method) pair through the trainer's own pieces: two SGD steps
(benchmark.train.loop.train_step) on CPU with batch 2, the real augmentations, class counts and semantic
class embeddings, the method built by build_method from the settings a grid gives the cell.

Checks output shapes, finite losses and that every parameter (of the model and of the loss's own head)
moves. Models and inputs are channels_last, as the trainer runs them. ResNet-50 runs its photo pipeline
(random crop, flip, erasing) at 64 of 72 px: the paper's 448 of 512 costs 15-20 s a pair on 2 cores and
tests nothing more about a method (tests/test_models.py runs ResNet-50 at 448, tests/test_augment.py the
448-of-512 pipeline). The ResNets are marked slow (about 1-2 s a pair); small_cnn runs in the fast suite.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fixtures.cell_runs import settings_for

from benchmark.augment import augment, eval_view
from benchmark.hierarchy import Hierarchy, embed_hierarchy
from benchmark.methods import MethodContext, build_method
from benchmark.optim import SGD
from benchmark.registry import METHODS, SEMANTIC
from benchmark.train.loop import train_step

C = 5
CLASS_COUNTS = [3, 1, 4, 1, 5]
# Model -> (channels, stored size, augment settings).
MODELS = {
    "small_cnn": (1, 8, {"max_shift": 1}),
    "cifar_resnet110_wide": (3, 32, {"hflip": True, "max_shift": 5, "shift_fill": "nearest"}),
    "resnet50": (3, 72, {"crop": 64, "hflip": True, "erase": {"p": 1.0}}),
}
TRAIN = {"lr": 0.01, "optimizer": {"weight_decay": 4e-4, "weight_decay_on": "kernels"}}
NEEDS_A_CELL = {"m2m"}  # over-samples the cell's own training subset (benchmark/train/build.py: TrainingImages)


def _semantic_embeddings() -> torch.Tensor:
    """Unitsphere embeddings of 5 classes under root 9 -> {7 -> {0, 1}, 8 -> {2, 3, 4}}."""
    edges = [(9, 7), (9, 8), (7, 0), (7, 1), (8, 2), (8, 3), (8, 4)]
    return torch.from_numpy(embed_hierarchy(Hierarchy.from_edges(edges, num_classes=C))).float()


def _label(method: str) -> str:
    return f"{method}-toy" if method in SEMANTIC else method


PAIRS = [
    pytest.param(model, method, id=f"{model}-{method}", marks=[pytest.mark.slow] if model != "small_cnn" else [])
    for model in MODELS for method in sorted(METHODS)
]


@pytest.mark.parametrize("model_name,method_name", PAIRS)
def test_two_steps_of_every_model_and_method(model_name, method_name, tmp_path):
    channels, size, aug = MODELS[model_name]
    settings = settings_for(_label(method_name), train=TRAIN, augment=aug,
                            digits={"model": model_name, "hierarchies": ["toy"]})
    if method_name in NEEDS_A_CELL:
        pytest.skip(f"{method_name} draws from the cell's training images; tests/test_learning.py trains it as a cell")
    aug = settings["augment"]  # with the schema's defaults
    context = MethodContext(C, channels, CLASS_COUNTS, _semantic_embeddings() if method_name in SEMANTIC else None)
    if "teacher" in settings:  # a student: its teacher's weights as its teacher's pack saves them (untrained here)
        teacher_settings = settings["teacher"]["settings"]
        torch.manual_seed(1)
        teacher = build_method(teacher_settings, MethodContext(C, channels, CLASS_COUNTS))
        torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
        context.teacher, context.teacher_settings = tmp_path / "teacher.pt", teacher_settings
    torch.manual_seed(0)
    method = build_method(settings, context).to(memory_format=torch.channels_last)
    opt = settings["train"]["optimizer"]
    optimizer = SGD(method.parameter_groups(opt), lr=TRAIN["lr"], momentum=opt["momentum"],
                    weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    run = SimpleNamespace(method=method, optimizer=optimizer, train=settings["train"], recipe=None,
                          runtime=SimpleNamespace(autocast=False))  # what train_step reads of a CellRun
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, channels, size, size), dtype=torch.uint8, generator=generator)
    y = torch.tensor([1, 4])
    before = {name: p.detach().clone() for name, p in method.named_parameters()}

    method.train()
    for epoch in range(2):
        x = ((augment(images, aug, generator) - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)
        crop = aug.get("crop", size)
        assert x.shape == (2, channels, crop, crop)
        value = train_step(run, *method.train_batch(x, y, epoch))
        assert value.ndim == 0 and torch.isfinite(value), value

    unmoved = [name for name, p in method.named_parameters() if torch.equal(p.detach(), before[name])]
    assert unmoved == []
    method.eval()
    with torch.no_grad():
        x = ((eval_view(images, aug) - 127.5) / 64.0).contiguous(memory_format=torch.channels_last)
        scores = method.scores(x)
    assert scores.shape == (2, C) and torch.isfinite(scores).all()
