"""Train and evaluate one cell: (dataset, loss label, samples per class, seed).

The whole prepared dataset goes to the device once as uint8; each step indexes a batch from
it and augments it there (benchmark/augment.py), then normalises it. An epoch is a fixed number
of steps for every samples-per-class value (small subsets are repeated, as in the paper), so
small cells are not trained for fewer updates than large ones.

Optionally (train.validation_fraction > 0) a stratified validation split is held out of the
cell's training subset (benchmark/validation.py) and evaluated after every epoch; `select:
best_val` then tests the weights of the best validation epoch. The test set is evaluated once,
at the end.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from benchmark import checkpoint
from benchmark.augment import augment, eval_view
from benchmark.data.prepared import Prepared, data_hash, load_prepared
from benchmark.data.subsets import draw_subset, stable_seed
from benchmark.device import resolve_device
from benchmark.evaluate import accuracy, balanced_accuracy, predict
from benchmark.losses import build_loss, split_label
from benchmark.models import build_model
from benchmark.optim import SGD, clip_grad_norm
from benchmark.runtime import Runtime, configure, prepare_model
from benchmark.schedules import learning_rate
from benchmark.validation import validation_split


@dataclass(frozen=True)
class Cell:
    dataset: str
    loss: str  # the loss label: a registered loss, or "<semantic loss>-<hierarchy>"
    samples_per_class: int | str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.loss}/spc{self.samples_per_class}/seed{self.seed}"


class DeviceData:
    """Prepared images (uint8) and labels on the device, with per-channel normalisation constants."""

    def __init__(self, prepared: Prepared, device: torch.device) -> None:
        self.images = torch.from_numpy(prepared.images).to(device)  # uint8 (N, H, W, C)
        self.labels = torch.from_numpy(prepared.labels).to(device)
        meta = prepared.metadata
        self.mean = torch.tensor(meta["mean"], device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(meta["std"], device=device).clamp_min(1e-6).view(1, -1, 1, 1) * 255.0

    def pixels(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) of the images `idx` (a permuted view; augmentation gathers from it)."""
        return self.images[idx].permute(0, 3, 1, 2)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def load_data(data_dir: Path, device: torch.device) -> tuple[Prepared, DeviceData]:
    """The prepared dataset, read and moved to the device once per process (packed cells share it)."""
    return _load_data(data_dir, device, (data_dir / "metadata.json").stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _load_data(data_dir: Path, device: torch.device, version: int) -> tuple[Prepared, DeviceData]:
    prepared = load_prepared(data_dir)
    return prepared, DeviceData(prepared, device)


def process_age_s() -> float:
    """Seconds since this process started (its start time in /proc counts from boot; 0 where unavailable)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


class BatchStream:
    """Endless batches over repeated, freshly shuffled passes through `subset`; its state can be saved."""

    def __init__(self, subset: np.ndarray, batch_size: int, generator: torch.Generator, device: torch.device):
        self.subset = torch.from_numpy(subset)
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        self.buffer = torch.empty(0, dtype=torch.int64)

    def __next__(self) -> torch.Tensor:
        while self.buffer.numel() < self.batch_size:
            order = torch.randperm(self.subset.numel(), generator=self.generator)
            self.buffer = torch.cat([self.buffer, self.subset[order]])
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size:]
        return batch.to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {"buffer": self.buffer.clone(), "generator": self.generator.get_state()}

    def restore(self, state: dict) -> None:
        self.buffer = state["buffer"]
        self.generator.set_state(state["generator"])


def steps_per_epoch(settings: dict, pool_size: int) -> int:
    value = settings["steps_per_epoch"]
    if value == "auto":
        return math.ceil(pool_size / settings["batch_size"])
    return int(value)


def model_parameter_groups(model: torch.nn.Module, optimizer: dict) -> list[dict]:
    """The model's parameters with their weight decay.

    weight_decay_on "kernels" decays only conv and linear weights (the tensors of 2+ dimensions),
    not biases or BatchNorm scales and shifts: what Keras' kernel_regularizer, used by the
    official CIFAR ResNets, penalises. "all" (default) decays every parameter.
    """
    params = list(model.parameters())
    if optimizer.get("weight_decay_on", "all") == "all":
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, loss: torch.nn.Module, train: dict) -> SGD:
    opt = train["optimizer"]
    groups = [*model_parameter_groups(model, opt), *loss.parameter_groups()]
    return SGD(
        groups,
        lr=train["lr"],
        momentum=opt["momentum"],
        weight_decay=opt["weight_decay"],
        nesterov=opt.get("nesterov", False),
    )


def load_class_embeddings(path: str | Path) -> tuple[torch.Tensor, dict]:
    """The cached semantic class embeddings (written by `python -m benchmark embed`) and their sidecar."""
    from benchmark.hierarchy import load_embeddings  # imports scipy: only semantic cells pay for it

    emb, meta = load_embeddings(path)
    return torch.from_numpy(emb).float(), meta


def train_step(model, loss, optimizer: SGD, x: torch.Tensor, y: torch.Tensor, clip_norm: float,
               autocast: bool = False) -> torch.Tensor:
    """One SGD step on a batch (forward, loss, backward, clip, update); returns the batch loss."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        value = loss(model(x), y)
    optimizer.zero_grad()
    value.backward()
    clip_grad_norm(optimizer.parameters(), clip_norm)
    optimizer.step()
    return value.detach()


def train_batch(data: DeviceData, idx: torch.Tensor, aug: dict, generator: torch.Generator,
                runtime: Runtime) -> torch.Tensor:
    """The normalised, augmented training batch of the images `idx`, in the runtime's layout."""
    return data.normalise(augment(data.pixels(idx), aug, generator)).contiguous(memory_format=runtime.memory_format)


def predict_images(model, loss, data: DeviceData, idx: np.ndarray, settings: dict, runtime: Runtime) -> np.ndarray:
    """Predicted classes of the images `idx`, seen as at test time (centre crop, no augmentation)."""
    idx_t = torch.from_numpy(idx).to(data.images.device)
    view = settings.get("augment", {})
    batches = (data.normalise(eval_view(data.pixels(chunk), view)).contiguous(memory_format=runtime.memory_format)
               for chunk in idx_t.split(settings.get("eval_batch_size", 1024)))
    with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.autocast):
        return predict(model, loss, batches)


def cell_fingerprint(cell: Cell, settings: dict, data_version: str) -> str:
    """What a checkpoint must match to be resumed: the cell, its settings (bar threads) and its data."""
    return checkpoint.fingerprint(asdict(cell), {k: v for k, v in settings.items() if k != "threads"}, data_version)


def train_cell(cell: Cell, settings: dict, data_dir: Path, checkpoint_path: Path | None = None,
               checkpoint_every_s: float = 600.0) -> dict:
    """Train one cell and return its metrics (see metrics.json's layout in the README).

    With `checkpoint_path`, a checkpoint there from an interrupted run of the same cell is resumed;
    one is saved on SIGTERM (then `Preempted` is raised) and every `checkpoint_every_s` at an
    epoch's end, so a crash loses at most that much work.
    """
    started = time.perf_counter()
    torch.set_num_threads(int(settings.get("threads", 1)))
    device = resolve_device(settings.get("device", "auto"))
    runtime = configure(settings, device)
    train = settings["train"]
    prepared, data = load_data(Path(data_dir), device)
    num_classes = prepared.num_classes
    subset = draw_subset(prepared.labels, prepared.train_idx, cell.samples_per_class, cell.dataset, cell.seed)
    fraction = train.get("validation_fraction", 0.0)
    train_idx, val_idx = validation_split(prepared.labels, subset, fraction, cell.dataset, cell.seed)
    class_counts = np.bincount(prepared.labels[train_idx], minlength=num_classes)

    torch.manual_seed(stable_seed("init", *asdict(cell).values()))
    loss_name, hierarchy = split_label(cell.loss)
    loss_args = dict(settings.get("loss", {}))
    embeddings_info = None
    if hierarchy is not None:
        embeddings, sidecar = load_class_embeddings(settings["embeddings"])
        loss_args["class_embeddings"] = embeddings
        embeddings_info = {"hierarchy": hierarchy, "embeddings_file": settings["embeddings"], **sidecar}
    embed_dim = loss_args["class_embeddings"].shape[1] if hierarchy is not None else num_classes
    loss = build_loss(loss_name, num_classes=num_classes, embed_dim=embed_dim, class_counts=class_counts.tolist(),
                      **loss_args).to(device)
    model = build_model(settings["model"], prepared.images.shape[-1], embed_dim)
    forward = prepare_model(model, runtime)  # model itself keeps the state_dict keys; forward may be compiled
    optimizer = build_optimizer(model, loss, train)

    generator = torch.Generator().manual_seed(stable_seed("order", *asdict(cell).values()))
    aug_generator = torch.Generator(device=device).manual_seed(stable_seed("augment", *asdict(cell).values()))
    stream = BatchStream(train_idx, train["batch_size"], generator, device)
    steps = steps_per_epoch(train, prepared.train_idx.size)
    aug = settings.get("augment", {})
    select = train.get("select", "last")
    patience = train.get("patience", 0)
    val_target = prepared.labels[val_idx]

    curves: dict[str, list[float]] = {"train_loss": [], "lr": []}
    if val_idx.size:
        curves["val_accuracy"] = []
    best = {"accuracy": -1.0, "epoch": None, "state": None}
    loop = {"epoch": 0, "step": 0, "loss_sum": 0.0, "elapsed_s": 0.0, "status": "ok"}
    key = cell_fingerprint(cell, settings, data_hash(prepared.metadata))

    def snapshot() -> dict:
        return {"fingerprint": key, "model": model.state_dict(), "loss": loss.state_dict(),
                "optimizer": optimizer.state_dict(), "stream": stream.state(), "augment": aug_generator.get_state(),
                "loop": {**loop, "elapsed_s": loop["elapsed_s"] + time.perf_counter() - started},
                "curves": curves, "best": best}

    resumed = checkpoint.load(checkpoint_path, key) if checkpoint_path else None
    if resumed is not None and "finished" in resumed:  # done by an earlier run of a pack (see __main__)
        return resumed["finished"]
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        loss.load_state_dict(resumed["loss"])
        optimizer.load_state_dict(resumed["optimizer"])
        stream.restore(resumed["stream"])
        aug_generator.set_state(resumed["augment"])
        loop, curves, best = resumed["loop"], resumed["curves"], resumed["best"]
        print(f"{cell.key}: resuming from {checkpoint_path} at epoch {loop['epoch']}, step {loop['step']}",
              flush=True)
    last_save = time.monotonic()
    timing = {"process_to_first_step_s": None, "train_s": 0.0}
    train_started = time.perf_counter()
    while loop["epoch"] < train["epochs"] and loop["status"] == "ok":
        epoch = loop["epoch"]
        lr = learning_rate(epoch, train["epochs"], train["lr"], train["schedule"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss.train()
        loss_sum = torch.tensor(loop["loss_sum"], device=device)
        for step in range(loop["step"], steps):
            if checkpoint_path and checkpoint.stop_requested():
                loop.update(step=step, loss_sum=float(loss_sum))
                checkpoint.save(checkpoint_path, snapshot())
                raise checkpoint.Preempted(checkpoint_path, epoch, step, checkpoint.seconds_since_stop_request())
            if timing["process_to_first_step_s"] is None:  # in a pack, later cells count the earlier ones too
                timing["process_to_first_step_s"] = process_age_s()
                timing["setup_s"] = time.perf_counter() - started
            idx = next(stream)
            x = train_batch(data, idx, aug, aug_generator, runtime)
            loss_sum += train_step(forward, loss, optimizer, x, data.labels[idx], train["grad_clip_norm"],
                                   runtime.autocast)
        loop.update(epoch=epoch + 1, step=0, loss_sum=0.0)
        epoch_loss = float(loss_sum) / steps
        curves["train_loss"].append(epoch_loss)
        curves["lr"].append(lr)
        print(f"{cell.key}: epoch {epoch + 1}/{train['epochs']} train loss {epoch_loss:.4f}", flush=True)
        if not math.isfinite(epoch_loss):
            loop["status"] = "diverged"
            break
        if val_idx.size:
            val_accuracy = accuracy(predict_images(forward, loss, data, val_idx, settings, runtime), val_target)
            curves["val_accuracy"].append(val_accuracy)
            if val_accuracy > best["accuracy"]:
                best["accuracy"], best["epoch"] = val_accuracy, epoch
                if select == "best_val":
                    best["state"] = copy.deepcopy((model.state_dict(), loss.state_dict()))
            elif patience and epoch - best["epoch"] >= patience:
                break
        if checkpoint_path and time.monotonic() - last_save >= checkpoint_every_s:
            checkpoint.save(checkpoint_path, snapshot())
            last_save = time.monotonic()
    status = loop["status"]
    timing["train_s"] = time.perf_counter() - train_started

    if select == "best_val" and best["state"] is not None:
        model.load_state_dict(best["state"][0])
        loss.load_state_dict(best["state"][1])
    tested_epoch = best["epoch"] if select == "best_val" and best["state"] is not None else len(curves["lr"]) - 1
    test_started = time.perf_counter()
    pred = predict_images(forward, loss, data, prepared.test_idx, settings, runtime)  # the one use of the test set
    timing["test_s"] = time.perf_counter() - test_started
    target = prepared.labels[prepared.test_idx]
    metrics = {
        "cell": asdict(cell),
        "status": status,
        "test_accuracy": accuracy(pred, target),
        "test_balanced_accuracy": balanced_accuracy(pred, target, num_classes),
        "tested_epoch": tested_epoch,
        "validation": {
            "fraction": fraction,
            "images": int(val_idx.size),
            "select": select,
            "best_accuracy": best["accuracy"] if val_idx.size else None,
            "best_epoch": best["epoch"],
            "final_accuracy": curves["val_accuracy"][-1] if curves.get("val_accuracy") else None,
        },
        "epochs_run": len(curves["train_loss"]),
        "steps_per_epoch": steps,
        "train_images": int(train_idx.size),
        "num_classes": num_classes,
        "curves": curves,
        "wall_time_s": loop["elapsed_s"] + time.perf_counter() - started,
        "resumed": resumed is not None,
        "device": str(device),
        "runtime": runtime.describe(),
        "timing": timing,
        "data_hash": data_hash(prepared.metadata),
    }
    if embeddings_info is not None:
        metrics["class_embeddings"] = embeddings_info
    return metrics
