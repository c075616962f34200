"""Building a cell: its device, data, training subset, validation split, method and optimiser."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.data.errors import DataError
from benchmark.data.longtail import draw_longtail_subset, longtail_counts
from benchmark.data.prepared import Prepared, data_hash
from benchmark.data.subsets import ALL, class_orders, draw_subset, stable_seed
from benchmark.device import DeviceError, resolve_device
from benchmark.methods import Method, MethodContext, build_method, load_class_embeddings
from benchmark.optim import SGD
from benchmark.runtime import Runtime, configure
from benchmark.targets import load
from benchmark.train.data import BatchStream, DeviceData, load_data, steps_per_epoch
from benchmark.validation import validation_split


@dataclass(frozen=True)
class Cell:
    """A cell's coordinates (benchmark/grid.py): `split` draws its training subset, `seed` the rest."""

    dataset: str
    method: str  # the method label: a registered method, or "<semantic method>-<hierarchy>"
    samples_per_class: int | str
    split: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.method}/spc{self.samples_per_class}/split{self.split}/seed{self.seed}"

    def seed_for(self, purpose: str) -> int:
        """The seed of one random stream of this cell (init, order, augment), derived from the whole cell."""
        return stable_seed(purpose, *asdict(self).values())


@dataclass(frozen=True)
class RunOptions:
    """How a cell runs, where that cannot change its result (so not part of its identity)."""

    device: str  # the configured device: auto, cpu, cuda, cuda:N (its kind is in the cell's settings)
    threads: int
    eval_batch_size: int


@dataclass
class TrainingImages:
    """The cell's training subset on the device, for a method that draws batches of its own (M2m
    over-samples it): batches come augmented and normalised as the loop's, from the cell's augmentation
    generator, whose state a checkpoint saves."""

    data: DeviceData
    idx: torch.Tensor  # image indices of the training subset, on the device
    augment: dict
    generator: torch.Generator
    memory_format: torch.memory_format
    recipe: object | None = None

    def batch(self, idx: torch.Tensor):
        return self.data.train_batch(idx, self.augment, self.generator, self.memory_format, self.recipe)

    def labels(self) -> torch.Tensor:
        return self.data.labels[self.idx]

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images -> pixels in [0, 1] (before clamping)."""
        return (x * self.data.std + self.data.mean) / 255.0

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        return self.data.normalise(u * 255.0)


def training_subset(cell: Cell, settings: dict, prepared: Prepared) -> np.ndarray:
    """The cell's training subset (before the validation split): `samples_per_class` images per class, or
    with `imbalance` on a long-tailed subset whose largest class has that many ('all': as many as the
    smallest class of the pool has)."""
    labels, pool = prepared.labels, prepared.train_idx
    if "imbalance" not in settings:
        return draw_subset(labels, pool, cell.samples_per_class, cell.dataset, cell.split)
    imbalance = settings["imbalance"]
    n_max = cell.samples_per_class
    if n_max == ALL:
        n_max = min(order.size for order in class_orders(labels, pool, cell.dataset, cell.split))
    counts = longtail_counts(int(n_max), prepared.num_classes, imbalance["factor"], imbalance["profile"], cell.split,
                             cell.dataset)
    return draw_longtail_subset(labels, pool, counts, cell.dataset, cell.split)


@dataclass
class CellRun:
    """Everything a cell's training loop and evaluation use, built once."""

    cell: Cell
    settings: dict
    options: RunOptions
    runtime: Runtime
    prepared: Prepared
    data: DeviceData
    train_idx: np.ndarray
    val_idx: np.ndarray
    method: Method
    optimizer: SGD
    stream: BatchStream
    aug_generator: torch.Generator
    steps: int
    embeddings: dict | None
    recipe: object | None  # benchmark.recipe.pipeline.Recipe, for cells whose train.recipe is on
    started: float  # time.perf_counter() when the cell began

    @property
    def evaluated(self) -> Method:
        """What validation and test evaluate: the method, or its EMA copy (recipe)."""
        return self.recipe.evaluated(self.method) if self.recipe is not None else self.method

    @property
    def train(self) -> dict:
        return self.settings["train"]

    @property
    def data_hash(self) -> str:
        return data_hash(self.prepared.metadata)


def build_cell(cell: Cell, settings: dict, options: RunOptions, data_dir: Path, teacher: Path | None = None) -> CellRun:
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    if device.type != settings["device"]:
        raise DeviceError(f"cell {cell.name} is set up for {settings['device']} but this job got device "
                          f"{options.device!r}, which is {device.type} here; run it where {settings['device']} is "
                          "available or change `device` in the config (a new cell)")
    runtime = configure(settings, device)
    train = settings["train"]
    prepared, data = load_data(Path(data_dir), device)
    subset = training_subset(cell, settings, prepared)
    if train["validation_split"] == "fixed":  # the dataset's own validation images (DEIC's split)
        if "val_idx" not in prepared.metadata:
            raise DataError(f"dataset {cell.dataset} has no fixed validation split (val_idx in its prepared "
                            "metadata); use tune.validation: carved, or a dataset that has one (cub_deic)")
        fixed = np.asarray(prepared.metadata["val_idx"], dtype=np.int64)
        val_idx = np.intersect1d(subset, fixed)
        train_idx = np.setdiff1d(subset, fixed)
    else:
        train_idx, val_idx = validation_split(prepared.labels, subset, train["validation_fraction"], cell.dataset,
                                              cell.split)
    class_counts = np.bincount(prepared.labels[train_idx], minlength=prepared.num_classes)
    aug_generator = torch.Generator(device=device).manual_seed(cell.seed_for("augment"))
    images = TrainingImages(data, torch.from_numpy(train_idx).to(device), settings["augment"], aug_generator,
                            runtime.memory_format)

    embeddings, context = None, MethodContext(prepared.num_classes, prepared.images.shape[-1], class_counts.tolist(),
                                              extra={"images": images, "epochs": train["epochs"]})
    if teacher is not None:
        context.teacher, context.teacher_settings = teacher, settings["teacher"]["settings"]
    if "embeddings" in settings:
        context.embeddings, sidecar = load_class_embeddings(settings["embeddings"])
        embeddings = {"hierarchy": settings["hierarchy"], "embeddings_file": settings["embeddings"], **sidecar}
    torch.manual_seed(cell.seed_for("init"))
    method = build_method(settings, context)
    method.to(device, memory_format=runtime.memory_format)
    if runtime.compile:
        method.compile()
    opt = train["optimizer"]
    optimizer = SGD(method.parameter_groups(opt), lr=train["lr"], momentum=opt["momentum"],
                    weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    generator = torch.Generator().manual_seed(cell.seed_for("order"))
    recipe = load(settings["recipe_target"])(train["recipe"], method, aug_generator) if "recipe_target" in settings \
        else None
    images.recipe = recipe
    return CellRun(
        cell=cell, settings=settings, options=options, runtime=runtime, prepared=prepared, data=data,
        train_idx=train_idx, val_idx=val_idx, method=method, optimizer=optimizer,
        stream=BatchStream(train_idx, train["batch_size"], generator, device), aug_generator=aug_generator,
        steps=steps_per_epoch(train, prepared.train_idx.size, train_idx.size, cell.samples_per_class),
        embeddings=embeddings, recipe=recipe, started=started,
    )
