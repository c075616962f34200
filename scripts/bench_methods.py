"""Cost of one training step of each method of issue 11 against plain softmax cross-entropy.

    .venv/bin/python scripts/bench_methods.py [--setups digits cifar] [--cifar-batch 8] [--seconds 2]
                                               [--device cpu|cuda] [--threads 1]

Each method is built as the trainer builds it (benchmark.grid.cell_settings of a validated config, then
benchmark.methods.build_method, schema defaults) and timed on the same random batch with the same step
as benchmark/train/loop.py's train_step: the objective, backward, gradient clipping, an SGD step.
Setups: digits (small_cnn, 1 x 8 x 8, 10 classes, batch 64) and cifar (cifar_resnet110_wide, 3 x 32 x 32,
100 classes, a small batch; harmonic = its harmonic variant). The methods take turns for --rounds rounds
after two warm-up steps each; each step is timed on its own and the fastest counts (the machine may be
shared). Printed: ms per step and the ratio to softmax_ce of the same setup, and beside them the FLOPs
of one step as torch.utils.flop_counter counts them (matmuls and convolutions, forward and backward,
the double backward of grad_l2 included; not OLE's SVDs): a cost ratio that no other load can move.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

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


def fastest_step(step, seconds: float, device: torch.device) -> float:
    """The shortest of the steps run in about `seconds` (at least 2), each timed on its own.

    On a shared machine the mean over a window measures the other users too; the fastest single step is
    the closest to the method's own cost (a step of a few ms usually runs within one scheduler slice).
    """
    best, began, done = float("inf"), time.perf_counter(), 0
    while done < 2 or time.perf_counter() - began < seconds:
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best, done = min(best, time.perf_counter() - started), done + 1
    return best


class _Global:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks refuse autograd.grad
    (grad_l2's double backward); everything is counted under "Global" only (torch 2.14's attribute names)."""

    parents = {"Global"}

    def __enter__(self) -> _Global:
        return self

    def __exit__(self, *exc) -> None:
        return None


def step_flops(step) -> int:
    """FLOPs of one step (matmuls and convolutions, as torch's flop counter knows them)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _Global()
    with counter:
        step()
    return counter.get_total_flops()


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
    print(f"device {device}, torch threads {torch.get_num_threads()}, fp32, fastest step of {args.rounds} rounds "
          f"of {args.seconds / args.rounds:.2f} s per method\n")
    print("| setup | method | ms / step | vs softmax_ce | GFLOP / step | vs softmax_ce |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.setups:
        dataset, model, shape, classes = SETUPS[name]
        batch = 64 if name == "digits" else args.cifar_batch
        steps = {m: stepper(settings_for(dataset, model, m, args.device), shape, classes, batch, device)
                 for m in METHODS}
        flops = {}
        for method, step in steps.items():  # warm-up, then the counted step
            step()
            flops[method] = step_flops(step)
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(args.rounds):
            for method, step in steps.items():
                best[method] = min(best[method], fastest_step(step, args.seconds / args.rounds, device))
        label = f"{name} ({model}, batch {batch})"
        for method, value in best.items():
            print(f"| {label} | {method} | {1000 * value:.1f} | {value / best['softmax_ce']:.2f}x "
                  f"| {flops[method] / 1e9:.3f} | {flops[method] / flops['softmax_ce']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
