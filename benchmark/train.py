"""Train and evaluate one cell: (dataset, loss, samples per class, seed).

The whole prepared dataset goes to the device once as uint8; each step indexes a batch from
it, converts and augments it there. An epoch is a fixed number of steps for every
samples-per-class value (small subsets are repeated, as in the paper), so small cells are not
trained for fewer updates than large ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.augment import augment
from benchmark.data.prepared import Prepared, data_hash, load_prepared
from benchmark.data.subsets import draw_subset, stable_seed
from benchmark.device import resolve_device
from benchmark.evaluate import accuracy, balanced_accuracy, predict
from benchmark.losses import build_loss
from benchmark.models import build_model
from benchmark.optim import SGD, clip_grad_norm
from benchmark.schedules import learning_rate


@dataclass(frozen=True)
class Cell:
    dataset: str
    loss: str
    samples_per_class: int | str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.loss}/spc{self.samples_per_class}/seed{self.seed}"


class DeviceData:
    """Prepared images and labels on the device, with per-channel normalisation constants."""

    def __init__(self, prepared: Prepared, device: torch.device) -> None:
        self.images = torch.from_numpy(prepared.images).to(device)  # uint8 (N, H, W, C)
        self.labels = torch.from_numpy(prepared.labels).to(device)
        meta = prepared.metadata
        self.mean = torch.tensor(meta["mean"], device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(meta["std"], device=device).clamp_min(1e-6).view(1, -1, 1, 1) * 255.0

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.images[idx].permute(0, 3, 1, 2).float()
        return (x - self.mean) / self.std


def batch_stream(subset: np.ndarray, batch_size: int, generator: torch.Generator, device: torch.device):
    """Endless batches over repeated, freshly shuffled passes through `subset`."""
    subset_t = torch.from_numpy(subset)
    buffer = torch.empty(0, dtype=torch.int64)
    while True:
        while buffer.numel() < batch_size:
            buffer = torch.cat([buffer, subset_t[torch.randperm(subset_t.numel(), generator=generator)]])
        yield buffer[:batch_size].to(device, non_blocking=True)
        buffer = buffer[batch_size:]


def steps_per_epoch(settings: dict, pool_size: int) -> int:
    value = settings["steps_per_epoch"]
    if value == "auto":
        return math.ceil(pool_size / settings["batch_size"])
    return int(value)


def build_optimizer(model, loss, train: dict) -> SGD:
    opt = train["optimizer"]
    groups = [{"params": list(model.parameters())}, *loss.parameter_groups()]
    return SGD(
        groups,
        lr=train["lr"],
        momentum=opt["momentum"],
        weight_decay=opt["weight_decay"],
        nesterov=opt.get("nesterov", False),
    )


def train_cell(cell: Cell, settings: dict, data_dir: Path) -> dict:
    """Train one cell and return its metrics (see metrics.json's layout in the README)."""
    started = time.perf_counter()
    torch.set_num_threads(int(settings.get("threads", 1)))
    device = resolve_device(settings.get("device", "auto"))
    train = settings["train"]
    prepared = load_prepared(data_dir)
    subset = draw_subset(prepared.labels, prepared.train_idx, cell.samples_per_class, cell.dataset, cell.seed)

    torch.manual_seed(stable_seed("init", *asdict(cell).values()))
    num_classes = prepared.num_classes
    loss_cls_settings = settings.get("loss", {})
    loss = build_loss(cell.loss, num_classes=num_classes, embed_dim=num_classes, **loss_cls_settings).to(device)
    model = build_model(settings["model"], prepared.images.shape[-1], num_classes).to(device)
    optimizer = build_optimizer(model, loss, train)

    data = DeviceData(prepared, device)
    generator = torch.Generator().manual_seed(stable_seed("order", *asdict(cell).values()))
    aug_generator = torch.Generator(device=device).manual_seed(stable_seed("augment", *asdict(cell).values()))
    stream = batch_stream(subset, train["batch_size"], generator, device)
    steps = steps_per_epoch(train, prepared.train_idx.size)
    autocast = device.type == "cuda" and settings.get("precision", "auto") in ("auto", "bf16")

    curves: dict[str, list[float]] = {"train_loss": [], "lr": []}
    status = "ok"
    for epoch in range(train["epochs"]):
        lr = learning_rate(epoch, train["epochs"], train["lr"], train["schedule"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss.train()
        loss_sum = torch.zeros((), device=device)
        for _ in range(steps):
            idx = next(stream)
            x = augment(data.batch(idx), settings.get("augment", {}), aug_generator)
            y = data.labels[idx]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                output = model(x)
                value = loss(output, y)
            optimizer.zero_grad()
            value.backward()
            clip_grad_norm(optimizer.parameters(), train["grad_clip_norm"])
            optimizer.step()
            loss_sum += value.detach()
        epoch_loss = float(loss_sum) / steps
        curves["train_loss"].append(epoch_loss)
        curves["lr"].append(lr)
        if not math.isfinite(epoch_loss):
            status = "diverged"
            break

    test_idx = torch.from_numpy(prepared.test_idx).to(device)
    eval_batches = (data.batch(chunk) for chunk in test_idx.split(settings.get("eval_batch_size", 1024)))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        pred = predict(model, loss, eval_batches)
    target = prepared.labels[prepared.test_idx]
    return {
        "cell": asdict(cell),
        "status": status,
        "test_accuracy": accuracy(pred, target),
        "test_balanced_accuracy": balanced_accuracy(pred, target, num_classes),
        "epochs_run": len(curves["train_loss"]),
        "steps_per_epoch": steps,
        "train_images": int(subset.size),
        "num_classes": num_classes,
        "curves": curves,
        "wall_time_s": time.perf_counter() - started,
        "device": str(device),
        "data_hash": data_hash(prepared.metadata),
    }
