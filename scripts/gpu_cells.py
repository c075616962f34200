"""GPU checks through the real CLI (scripts/gpu_check.sh runs this on a CUDA machine; --smoke on a CPU).

On synthetic prepared datasets written here (a CUB-shaped one, 512 x 512 images for 448 crops, and a
CIFAR-shaped one, 32 x 32), it trains with `python -m benchmark train` (the pack protocol, no MLflow):
1. one short ResNet-50 cell at 448 px and one wide ResNet-110 cell, in bf16 (the default on a GPU);
2. the ResNet-110 cell again in fp32: the same cell, the other precision (time and accuracy side by side);
3. two cells started at once with cells_per_gpu 1 on one GPU: the second must wait for the first's GPU
   claim (benchmark/gpus.py), so their training times do not overlap.
Writes one JSON with every figure to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic(folder: Path, n: int, side: int, classes: int, name: str) -> Path:
    from benchmark.data.prepared import write_prepared

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % classes
    test = np.arange(0, n, 5)
    train = np.setdiff1d(np.arange(n), test)
    write_prepared(folder / name, name, images, labels, train, test, [str(c) for c in range(classes)])
    return folder / name


def spec(data: Path, dataset: str, model: str, crop: int | None, precision: str, device: str, epochs: int,
         steps: int, batch: int, folder: Path) -> dict:
    from benchmark.grid import settings_key
    from benchmark.registry import METHODS, MODELS

    train = {"epochs": epochs, "batch_size": batch, "steps_per_epoch": steps, "lr": 0.05,
             "optimizer": {"momentum": 0.9, "weight_decay": 5e-4, "weight_decay_on": "all", "nesterov": False},
             "grad_clip_norm": 10.0, "schedule": {"name": "cosine", "min_lr": 1e-6, "cycle_mult": 2},
             "validation_fraction": 0.0, "validation_split": "carved", "select": "last", "patience": 0,
             "recipe": {"trivial_augment": False, "erase": {"p": 0.0, "area": [0.02, 0.3], "aspect": [0.3, 3.33]},
                        "mixup": {"alpha": 0.0}, "cutmix": {"p": 0.0, "alpha": 1.0},
                        "ema": {"decay": 0.0, "every": 1}}}
    augment = {"hflip": True, "max_shift": 0, "shift_fill": "zero", **({"crop": crop} if crop else {})}
    settings = {"method_target": METHODS["softmax_ce"], "method": {}, "model": model, "model_target": MODELS[model],
                "augment": augment, "train": train, "device": device, "precision": precision, "compile": False,
                "deterministic": False}
    key = settings_key(settings)
    return {"dataset": dataset, "method": "softmax_ce", "spc": "all", "key": key, "settings": settings,
            "runs": [[0, 0]], "folder": str(folder / f"{dataset}-{model}-{precision}-{key}"), "data": str(data),
            "save_weights": False}


def train(pack: dict, device: str, marker: Path, eval_batch: int, cells_per_gpu: int = 1) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmark", "train", "--pack", json.dumps(pack), "--marker", str(marker),
               "--device", device, "--threads", "4", "--eval-batch-size", str(eval_batch), "--cells-per-gpu",
               str(cells_per_gpu), "--grid", "gpu_check"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, pack: dict, started: float) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    record = json.loads((Path(pack["folder"]) / "split0" / "seed0" / "metrics.json").read_text())
    steps = record["epochs_run"] * record["steps_per_epoch"]
    batch = pack["settings"]["train"]["batch_size"]
    return {"wall_s": round(time.perf_counter() - started, 2), "train_s": record["timing"]["train_s"],
            "images_per_s": round(steps * batch / record["timing"]["train_s"], 1), "runtime": record["runtime"],
            "test_accuracy": record["test_accuracy"], "device_name": record["provenance"]["device_name"],
            "gpu": record["provenance"].get("gpu"), "started": record["started"], "line": out.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks this script runs")
    args = parser.parse_args()
    work = args.out / "work"
    device = "cpu" if args.smoke else "cuda"
    kind = "cpu" if args.smoke else "cuda"
    precision_default = "fp32" if args.smoke else "bf16"
    cub = synthetic(work, 24 if args.smoke else 480, 64 if args.smoke else 512, 8, "cub_like")
    cifar = synthetic(work, 40 if args.smoke else 5000, 32, 10, "cifar_like")
    steps = 2 if args.smoke else 30
    results: dict = {"smoke": args.smoke}
    cases = {
        "resnet50_448_" + precision_default: spec(cub, "cub_like", "resnet50", 56 if args.smoke else 448,
                                                  precision_default, kind, 1, steps, 4 if args.smoke else 48, work),
        "resnet110_" + precision_default: spec(cifar, "cifar_like", "cifar_resnet110_wide", None, precision_default,
                                              kind, 1, steps, 8 if args.smoke else 100, work),
        "resnet110_fp32": spec(cifar, "cifar_like", "cifar_resnet110_wide", None, "fp32", kind, 1, steps,
                               8 if args.smoke else 100, work),
    }
    for name, pack in cases.items():
        started = time.perf_counter()
        results[name] = finish(train(pack, device, work / f"{name}.pack", 64), pack, started)
        print(name, results[name], flush=True)
    # two cells at once on one GPU with one slot: the claim makes the second wait
    packs = [spec(cifar, "cifar_like", "small_cnn", None, precision_default, kind, 2, steps * 4, 64, work / f"p{i}")
             for i in range(2)]
    started = time.perf_counter()
    procs = [train(p, device, work / f"claim{i}.pack", 64) for i, p in enumerate(packs)]
    results["claims"] = [finish(proc, p, started) for proc, p in zip(procs, packs, strict=True)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_cells.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out / 'gpu_cells.json'}")


if __name__ == "__main__":
    main()
