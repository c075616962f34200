"""Cost of one training step of each method of issue 11 against plain softmax cross-entropy.

    .venv/bin/python scripts/bench_methods.py [--setups digits cifar] [--cifar-batch 8] [--seconds 2]
                                               [--device cpu|cuda] [--threads 1]

Each method is built as the trainer builds it (benchmark.grid.cell_settings of a validated config, then
benchmark.methods.build_method, schema defaults) and timed on the same random batch with the same step
as benchmark/train/loop.py's train_step: the objective, backward, gradient clipping, an SGD step.
Setups: digits (small_cnn, 1 x 8 x 8, 10 classes, batch 64) and cifar (cifar_resnet110_wide, 3 x 32 x 32,
100 classes, a small batch; harmonic = its harmonic variant). The methods take turns for --rounds rounds
after two warm-up steps each; the best round counts (the machine may be shared). Printed: ms per step
and the ratio to softmax_ce of the same setup.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmark.config import validate
from benchmark.grid import cell_settings
from benchmark.methods import MethodContext, build_method
from benchmark.optim import SGD

METHODS = ["softmax_ce", "l2_softmax", "normface", "cosface", "arcface", "sphereface", "lsoftmax", "tvmf", "ole",
           "grad_l2", "harmonic"]
SETUPS = {  # dataset (for its config entry), model, input shape, classes
    "digits": ("digits", "small_cnn", (1, 8, 8), 10),
    "cifar": ("cifar100", "cifar_resnet110_wide", (3, 32, 32), 100),
}


def settings_for(dataset: str, model: str, method: str, device: str) -> dict:
    config = validate({"grid": "bench_methods", "datasets": [dataset], "methods": [method],
                       "samples_per_class": [5], "seeds": [0], "device": device.split(":")[0], "precision": "fp32",
                       "train": {"lr": 0.01}, "dataset_settings": {dataset: {"model": model}}})
    return cell_settings(config, dataset, method)


def stepper(settings: dict, shape: tuple, classes: int, batch: int, device: torch.device):
    """A function running one training step of the method on a fixed batch."""
    torch.manual_seed(0)
    method = build_method(settings, MethodContext(classes, shape[0], [5] * classes)).to(device)
    method.train()
    train = settings["train"]
    optimizer = SGD(method.parameter_groups(train["optimizer"]), lr=train["lr"],
                    momentum=train["optimizer"]["momentum"], weight_decay=train["optimizer"]["weight_decay"])
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *shape, generator=generator).to(device)
    y = (torch.arange(batch) % classes).to(device)

    def step() -> None:
        value = method.objective(x, y)
        optimizer.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(optimizer.parameters(), train["grad_clip_norm"])
        optimizer.step()

    return step


def seconds_per_step(step, seconds: float, device: torch.device) -> float:
    done, began = 0, time.perf_counter()
    while done < 2 or time.perf_counter() - began < seconds:
        step()
        done += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - began) / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=["digits", "cifar"])
    parser.add_argument("--cifar-batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="per method and setup, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, fp32, best of {args.rounds} rounds of "
          f"{args.seconds / args.rounds:.2f} s\n")
    print("| setup | method | ms / step | vs softmax_ce |\n|---|---|---:|---:|")
    for name in args.setups:
        dataset, model, shape, classes = SETUPS[name]
        batch = 64 if name == "digits" else args.cifar_batch
        steps = {m: stepper(settings_for(dataset, model, m, args.device), shape, classes, batch, device)
                 for m in METHODS}
        for step in steps.values():  # warm-up
            step()
            step()
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(args.rounds):
            for method, step in steps.items():
                best[method] = min(best[method], seconds_per_step(step, args.seconds / args.rounds, device))
        label = f"{name} ({model}, batch {batch})"
        for method, value in best.items():
            print(f"| {label} | {method} | {1000 * value:.1f} | {value / best['softmax_ce']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
