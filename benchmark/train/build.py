"""Building a cell: its device, data, training subset, validation split, method and optimiser."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.data.prepared import Prepared, data_hash
from benchmark.data.subsets import draw_subset, stable_seed
from benchmark.device import resolve_device
from benchmark.methods import Method, build_method
from benchmark.optim import SGD
from benchmark.runtime import Runtime, configure
from benchmark.train.data import BatchStream, DeviceData, load_data, steps_per_epoch
from benchmark.validation import validation_split


@dataclass(frozen=True)
class Cell:
    dataset: str
    method: str  # the method label: a registered method, or "<semantic method>-<hierarchy>"
    samples_per_class: int | str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.method}/spc{self.samples_per_class}/seed{self.seed}"

    def seed_for(self, purpose: str) -> int:
        """The seed of one random stream of this cell (init, order, augment), derived from the whole cell."""
        return stable_seed(purpose, *asdict(self).values())


@dataclass
class CellRun:
    """Everything a cell's training loop and evaluation use, built once."""

    cell: Cell
    settings: dict
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
    started: float  # time.perf_counter() when the cell began

    @property
    def train(self) -> dict:
        return self.settings["train"]

    @property
    def data_hash(self) -> str:
        return data_hash(self.prepared.metadata)


def build_cell(cell: Cell, settings: dict, data_dir: Path) -> CellRun:
    started = time.perf_counter()
    torch.set_num_threads(int(settings["threads"]))
    device = resolve_device(settings["device"])
    runtime = configure(settings, device)
    train = settings["train"]
    prepared, data = load_data(Path(data_dir), device)
    subset = draw_subset(prepared.labels, prepared.train_idx, cell.samples_per_class, cell.dataset, cell.seed)
    train_idx, val_idx = validation_split(prepared.labels, subset, train["validation_fraction"], cell.dataset,
                                          cell.seed)
    class_counts = np.bincount(prepared.labels[train_idx], minlength=prepared.num_classes)

    torch.manual_seed(cell.seed_for("init"))
    method, embeddings = build_method(cell.method, settings, prepared.num_classes, prepared.images.shape[-1],
                                      class_counts.tolist())
    method.to(device, memory_format=runtime.memory_format)
    if runtime.compile:
        method.compile()
    opt = train["optimizer"]
    optimizer = SGD(method.parameter_groups(opt), lr=train["lr"], momentum=opt["momentum"],
                    weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    generator = torch.Generator().manual_seed(cell.seed_for("order"))
    aug_generator = torch.Generator(device=device).manual_seed(cell.seed_for("augment"))
    return CellRun(
        cell=cell, settings=settings, runtime=runtime, prepared=prepared, data=data, train_idx=train_idx,
        val_idx=val_idx, method=method, optimizer=optimizer,
        stream=BatchStream(train_idx, train["batch_size"], generator, device), aug_generator=aug_generator,
        steps=steps_per_epoch(train, prepared.train_idx.size), embeddings=embeddings, started=started,
    )
