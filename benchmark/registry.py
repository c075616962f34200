"""Every name a config can use, in one place: plain dicts from a config name to "module:attribute".

Add a method, a model or a dataset: one file in benchmark/losses/ or benchmark/methods/,
benchmark/models/ or benchmark/data/, and one line here. The Snakefile and the config validation read
the names without importing torch; a cell's spec carries the resolved "module:attribute" of its method
and model, so the trainer never imports this file and adding a line here reruns no cell
(benchmark/code.py: a cell's code is what it imports).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmark.targets import load

METHODS: dict[str, str] = {
    # The paper's losses (Barz & Denzler, WACV 2020, Table 2) and its semantic variants.
    "softmax_ce": "benchmark.losses.softmax:SoftmaxCrossEntropy",
    "label_smoothing": "benchmark.losses.softmax:LabelSmoothingCrossEntropy",
    "mse": "benchmark.losses.mse:SquaredError",
    "cosine": "benchmark.losses.cosine:CosineLoss",
    "cosine_ce": "benchmark.losses.cosine:CosineCrossEntropyLoss",
    "cosine_semantic": "benchmark.losses.cosine:CosineLoss",
    "cosine_ce_semantic": "benchmark.losses.cosine:CosineCrossEntropyLoss",
    # Losses for imbalanced data.
    "focal": "benchmark.losses.focal:FocalLoss",
    "cb_softmax": "benchmark.losses.class_balanced:ClassBalancedSoftmax",
    "cb_focal": "benchmark.losses.class_balanced:ClassBalancedFocal",
    "cb_sigmoid": "benchmark.losses.class_balanced:ClassBalancedSigmoid",
    "cb_sigmoid_focal": "benchmark.losses.class_balanced:ClassBalancedSigmoidFocal",
    # Normalised and margin softmax losses (own their class weights; the model outputs embed_dim features).
    "l2_softmax": "benchmark.losses.normalized:L2ConstrainedSoftmax",
    "normface": "benchmark.losses.normalized:NormFace",
    "cosface": "benchmark.losses.normalized:CosFace",
    "arcface": "benchmark.losses.normalized:ArcFace",
    "sphereface": "benchmark.losses.sphereface:SphereFace",
    "lsoftmax": "benchmark.losses.sphereface:LSoftmax",
    # The small-data methods of the GEM and DEIC benchmarks.
    "tvmf": "benchmark.losses.tvmf:TVMFLoss",
    "ole": "benchmark.losses.ole:OLELoss",
    "grad_l2": "benchmark.methods.grad_l2:GradL2",
    "harmonic": "benchmark.methods.harmonic:Harmonic",  # CE on the dataset's model, harmonized
    # Methods that need more than one run or more than one loss on the outputs (benchmark/methods/).
    "sla": "benchmark.methods.sla:SLA",
    "sla_sd": "benchmark.methods.sla:SLASelfDistillation",
    "kd": "benchmark.methods.distill:KnowledgeDistillation",
    "rkd": "benchmark.methods.distill:RelationalDistillation",
    "m2m": "benchmark.methods.m2m:M2m",
}

# Methods whose objective is not defined on mixed batches (their Method class: supports_mixing = False);
# a config that mixes (train.recipe mixup or cutmix) for one of them is refused.
WITHOUT_MIXING: frozenset[str] = frozenset({"sla", "sla_sd", "kd", "rkd", "m2m"})

# Methods whose class embeddings phi(y) come from a class hierarchy (Barz & Denzler 2020, Sec. 3.3)
# instead of one-hot vectors. In a grid each runs once per hierarchy listed in
# dataset_settings.<dataset>.hierarchies, as the label "<method>-<hierarchy>".
SEMANTIC: frozenset[str] = frozenset({"cosine_semantic", "cosine_ce_semantic"})

MODELS: dict[str, str] = {  # constructor(in_channels, output_dim); never pre-trained weights
    "small_cnn": "benchmark.models.small_cnn:SmallCNN",
    "resnet50": "benchmark.models.resnet:resnet50",
    "cifar_resnet110_wide": "benchmark.models.resnet:cifar_resnet110_wide",
    "harmonic_small_cnn": "benchmark.models.harmonic:harmonic_small_cnn",
    "harmonic_resnet50": "benchmark.models.harmonic:harmonic_resnet50",
    "harmonic_cifar_resnet110_wide": "benchmark.models.harmonic:harmonic_cifar_resnet110_wide",
}

DATASETS: dict[str, str] = {  # module with FACTS and build(settings); see benchmark/data/
    "digits": "benchmark.data.digits",
    "mnist5k": "benchmark.data.mnist5k",
    "cub": "benchmark.data.cub",
    "cub_deic": "benchmark.data.cub_deic",  # CUB with DEIC's fixed validation split, 448 of 512 px
    "cub_deic_224": "benchmark.data.cub_deic",  # the same at 224 of 256 px
    "nabirds": "benchmark.data.nabirds",
    "cars": "benchmark.data.cars",
    "flowers": "benchmark.data.flowers",
    "mit67": "benchmark.data.mit67",
    "cifar100": "benchmark.data.cifar100",
}


def split_label(label: str) -> tuple[str, str | None]:
    """A cell's method label -> (registered method name, hierarchy or None): "cosine_semantic-cub_flat"."""
    method, _, hierarchy = label.partition("-")
    return method, hierarchy or None


def resolve(registry: dict[str, str], name: str, kind: str) -> Any:
    """Import and return the object registered under `name`."""
    if name not in registry:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return load(registry[name])


def dataset_module(name: str):
    """The module of dataset `name` (dataset modules import only numpy at module level)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return importlib.import_module(DATASETS[name])
