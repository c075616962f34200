"""Training throughput (images per second): our loop against the plain reference loop, side by side.

Both loops train the same model from the same stored uint8 images with the same batch size,
augmentations, optimiser settings and loss (softmax cross-entropy), for the same number of timed
steps after the same warm-up, on the same device and torch threads; see reference_loop.py for what
the plain way is. Ours is the code a cell runs (benchmark/train.py): data on the device once,
batched augmentation there, the runtime's precision and layout (benchmark/runtime.py).

Cases (settings from the real configs, for softmax_ce):
- digits: the embedded digits (real data), small CNN, config/config.yaml.
- cifar100: CIFAR-shaped random images (32x32x3, 100 classes; the real set cannot be downloaded
  here, and throughput does not depend on the pixel values), wide ResNet-110, config/paper.yaml.
- cub448 (CUDA only): 512x512 random images cropped to 448, 200 classes, ResNet-50, batch 48 (the
  paper's 96 is over 4 GPUs; fp32 at 96 does not fit one), config/paper.yaml.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import torch

from perf import reference_loop
from perf.repo_copy import REPO

CASES: dict[str, dict] = {
    "digits": {"config": "config/config.yaml", "dataset": "digits", "steps": (5, 150), "quick": (3, 20)},
    "cifar100": {"config": "config/paper.yaml", "dataset": "cifar100", "synthetic": (5000, 32, 100),
                 "steps": (1, 5), "quick": (1, 2), "cuda_steps": (10, 60)},
    "cub448": {"config": "config/paper.yaml", "dataset": "cub", "synthetic": (192, 512, 200), "batch_size": 48,
               "steps": (5, 30), "cuda_only": True},
}


def _case_settings(case: dict) -> dict:
    from benchmark.config import load_config
    from benchmark.grid import cell_settings

    base = None if case["config"] == "config/config.yaml" else REPO / "config/config.yaml"
    settings = cell_settings(load_config(REPO / case["config"], base=base), case["dataset"], "softmax_ce")
    if settings["train"]["lr"] is None:  # a grid whose rates come from tuning
        settings["train"] = {**settings["train"], "lr": 0.05}
    if "batch_size" in case:
        settings["train"] = {**settings["train"], "batch_size": case["batch_size"]}
    return settings


def _case_data(case: dict) -> dict:
    """uint8 images (N, H, W, C), labels, training indices and per-channel mean/std (0..1)."""
    if "synthetic" in case:
        n, size, classes = case["synthetic"]
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        labels = np.arange(n, dtype=np.int64) % classes
        source = f"random uint8 {size}x{size}x3, {classes} classes"
    else:
        from benchmark.data.settings import load_settings
        from benchmark.registry import dataset_module

        built = dataset_module(case["dataset"]).build(load_settings(case["dataset"], REPO / "config" / "datasets.yaml"))
        images, labels = built["images"], built["labels"]
        source = f"{case['dataset']} (real)"
    train_idx = np.arange(len(labels))
    scaled = images.reshape(-1, images.shape[-1]) / 255.0
    return {"images": images, "labels": labels, "train_idx": train_idx, "classes": int(labels.max()) + 1,
            "mean": scaled.mean(0).tolist(), "std": scaled.std(0).tolist(), "source": source}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(run, warmup: int, steps: int, device: torch.device) -> float:
    run(warmup)
    _sync(device)
    started = time.perf_counter()
    run(steps)
    _sync(device)
    return time.perf_counter() - started


def ours(settings: dict, data: dict, device: torch.device, warmup: int, steps: int,
         layout: dict | None = None) -> tuple[float, dict]:
    """Seconds for `steps` steps of the cell's own loop (benchmark.train.loop.train_step on batches from
    benchmark.train.data.DeviceData), and the runtime it used.

    `layout` ({"precision": "fp32"|"bf16", "channels_last": bool}) overrides what the runtime would
    choose, for the ablation rows: how much of the speedup is the data path, the layout, bf16.
    """
    from types import SimpleNamespace

    from benchmark.data.prepared import Prepared
    from benchmark.methods import MethodContext, build_method
    from benchmark.optim import SGD
    from benchmark.runtime import configure
    from benchmark.train.data import BatchStream, DeviceData
    from benchmark.train.loop import train_step

    runtime = configure(settings, device)
    if layout is not None:
        runtime = replace(runtime, autocast=layout["precision"] == "bf16",
                          memory_format=torch.channels_last if layout["channels_last"] else torch.contiguous_format)
    train = settings["train"]
    prepared = Prepared(data["images"], data["labels"], data["train_idx"], np.empty(0, np.int64),
                        {"mean": data["mean"], "std": data["std"], "classes": list(range(data["classes"]))})
    device_data = DeviceData(prepared, device)
    method = build_method(settings, MethodContext(data["classes"], data["images"].shape[-1], [1] * data["classes"]))
    method.to(device, memory_format=runtime.memory_format)
    opt = train["optimizer"]
    optimizer = SGD(method.parameter_groups(opt), lr=train["lr"], momentum=opt["momentum"],
                    weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    stream = BatchStream(data["train_idx"], train["batch_size"], torch.Generator().manual_seed(0), device)
    generator = torch.Generator(device=device).manual_seed(0)
    run_state = SimpleNamespace(method=method, optimizer=optimizer, runtime=runtime, train=train, recipe=None)

    def run(n: int) -> None:
        total = torch.zeros((), device=device)
        for _ in range(n):
            idx = next(stream)
            x, y = device_data.train_batch(idx, settings["augment"], generator, runtime.memory_format)
            total += train_step(run_state, x, y)
        float(total)

    return _time(run, warmup, steps, device), runtime.describe()


def _model(settings: dict, data: dict):
    from benchmark.targets import load

    return load(settings["model_target"])(in_channels=data["images"].shape[-1], output_dim=data["classes"])


def reference(settings: dict, data: dict, device: torch.device, warmup: int, steps: int,
              num_workers: int) -> float:
    """Seconds for `steps` steps of the plain loop (PyTorch's default backend switches)."""
    torch.backends.cudnn.benchmark = False
    train = settings["train"]
    model = _model(settings, data).to(device)
    batches = reference_loop.loader(data["images"], data["labels"], data["train_idx"], settings["augment"],
                                    data["mean"], data["std"], train["batch_size"], num_workers,
                                    pin_memory=device.type == "cuda")
    optimizer = reference_loop.sgd(model, train)
    return _time(lambda n: reference_loop.train_steps(model, optimizer, batches, train, device, n),
                 warmup, steps, device)


def flops_per_image(settings: dict, data: dict, device: torch.device) -> float:
    """Forward + backward FLOPs of one training image (counted by torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode


    model = _model(settings, data).to(device)
    size = int(settings["augment"].get("crop") or data["images"].shape[1])
    x = torch.randn(2, data["images"].shape[-1], size, size, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    return counter.get_total_flops() / 2



def run_case(name: str, device: torch.device, quick: bool) -> dict:
    case = CASES[name]
    warmup, steps = case["quick"] if quick and "quick" in case else \
        case.get("cuda_steps", case["steps"]) if device.type == "cuda" else case["steps"]
    settings = _case_settings(case)
    data = _case_data(case)
    batch = settings["train"]["batch_size"]
    # The plain way: worker processes on a GPU machine; on a CPU-only one they would take the cores
    # the model trains on, so the data is loaded in the training process.
    workers = min(8, (os.cpu_count() or 1) // 2) if device.type == "cuda" else 0
    reference_s = reference(settings, data, device, warmup, steps, workers)
    ours_s, runtime = ours(settings, data, device, warmup, steps)
    ablation = []
    if not quick:  # our loop with the precision and layout switched back one at a time
        for precision, channels_last in (("fp32", False), ("fp32", True), ("bf16", True)):
            seconds, used = ours(settings, data, device, warmup, steps,
                                 {"precision": precision, "channels_last": channels_last})
            ablation.append({"precision": used["precision"], "memory_format": used["memory_format"],
                             "images_per_s": round(batch * steps / seconds, 1),
                             "speedup": round(reference_s / seconds, 2)})
    flops = flops_per_image(settings, data, device)
    ours_ips, reference_ips = batch * steps / ours_s, batch * steps / reference_s
    from benchmark.estimate import bf16_peak_tflops  # the product's table of peaks

    peak = bf16_peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    size = int(settings["augment"].get("crop") or data["images"].shape[1])
    return {
        "name": name, "model": settings["model"], "input": [int(data["images"].shape[-1]), size, size],
        "data": data["source"], "batch_size": batch, "warmup_steps": warmup, "steps": steps,
        "ours_images_per_s": round(ours_ips, 1), "reference_images_per_s": round(reference_ips, 1),
        "speedup": round(ours_ips / reference_ips, 2), **runtime,
        "reference": {"precision": "fp32", "memory_format": "contiguous", "dataloader_workers": workers},
        "gflops_per_image": round(flops / 1e9, 3),
        "ours_tflops": round(flops * ours_ips / 1e12, 3),
        "bf16_peak_tflops": peak,
        "peak_fraction": round(flops * ours_ips / 1e12 / peak, 3) if peak else None,
        "ablation": ablation,
    }


def run(quick: bool, cases: list[str] | None = None, device: str = "auto") -> dict:
    """Every case that applies to the device (or `cases`), reference first, then ours."""
    from benchmark.device import resolve_device

    target = resolve_device(device)
    names = cases or [n for n, c in CASES.items() if target.type == "cuda" or not c.get("cuda_only")]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise ValueError(f"unknown throughput case(s) {unknown}; choose from {sorted(CASES)}")
    return {
        "device": torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cases": [run_case(name, target, quick) for name in names],
    }
