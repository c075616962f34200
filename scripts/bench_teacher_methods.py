"""The extra cost of SLA, SLA+SD, KD, RKD, the self-distillation generations and M2m against one CE cell.

Each method trains one cell of the prepared digits (or mnist5k) through the real trainer with the
settings of config/distill.yaml (M2m: config/longtail.yaml, at imbalance factor 10, against the CE cell
of the same long-tailed subset); the table gives each cell's training time, its ratio to the CE cell,
and the ratio counting the teachers it needs when they are not trained anyway (a KD student whose
teacher is the grid's CE row costs only its own cell; one whose teacher is not a row costs both).

    python scripts/bench_teacher_methods.py [--dataset digits] [--epochs 10] [--spc 50] [--repeats 2]

Times are medians over the repeats, in one thread on the CPU (or --device cuda); on a shared machine
say the load beside them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmark.config import load_config, merged, validate  # noqa: E402
from benchmark.grid import cell_settings  # noqa: E402
from benchmark.train import Cell, RunOptions, train_cell  # noqa: E402

DISTILL = ["softmax_ce", "sla", "sla_sd", "kd", "rkd", "sd_g1", "sd_g2"]


def grid(path: str, dataset: str, epochs: int, spc: int, device: str) -> dict:
    config = load_config(REPO / path, base=REPO / "config" / "config.yaml")
    return validate(merged(config, {"datasets": [dataset], "samples_per_class": [spc], "device": device,
                                    "dataset_settings": {dataset: {"samples_per_class": [spc]}},
                                    "precision": "fp32", "train": {"epochs": epochs}, "tracking": False}))


def time_cell(config: dict, dataset: str, label: str, spc: int, data: Path, folder: Path, options: RunOptions,
              repeats: int) -> float:
    """Median training seconds of the cell (its teacher trained first, once, and its weights kept)."""
    settings = cell_settings(config, dataset, label)
    teacher = folder / f"{settings['teacher']['label']}.pt" if "teacher" in settings else None
    times = []
    for _ in range(repeats):
        results = train_cell(Cell(dataset, label, spc, 0, 0), settings, options, data, teacher=teacher,
                             weights=folder / f"{label}.pt")
        times.append(results["timing"]["train_s"])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist5k"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--spc", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    options = RunOptions(args.device, 1, 1024)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / args.dataset
        subprocess.run([sys.executable, "-m", "benchmark", "prepare", args.dataset, "--out", str(data)], cwd=REPO,
                       check=True, capture_output=True)
        rows = []
        distill = grid("config/distill.yaml", args.dataset, args.epochs, args.spc, args.device)
        folder = Path(tmp) / "distill"
        seconds = {m: time_cell(distill, args.dataset, m, args.spc, data, folder, options, args.repeats)
                   for m in DISTILL}
        teachers = {"kd": ["softmax_ce"], "rkd": ["softmax_ce"], "sd_g1": ["softmax_ce"],
                    "sd_g2": ["softmax_ce", "sd_g1"]}
        for m in DISTILL:
            total = seconds[m] + sum(seconds[t] for t in teachers.get(m, []))
            rows.append((m, seconds[m], seconds[m] / seconds["softmax_ce"], total / seconds["softmax_ce"]))
        longtail = grid("config/longtail.yaml", args.dataset, args.epochs, args.spc, args.device)
        folder = Path(tmp) / "longtail"
        ce = time_cell(longtail, args.dataset, "softmax_ce", args.spc, data, folder, options, args.repeats)
        m2m = time_cell(longtail, args.dataset, "m2m", args.spc, data, folder, options, args.repeats)
        rows.append(("softmax_ce (long-tailed, IF 10)", ce, 1.0, 1.0))
        rows.append(("m2m (long-tailed, IF 10)", m2m, m2m / ce, (m2m + ce) / ce))
    print(f"{args.dataset}, samples per class {args.spc}, {args.epochs} epochs, {args.device}, one thread, "
          f"median of {args.repeats}")
    print("| method | train s | x CE cell | x CE cell with its teachers |")
    print("|---|---:|---:|---:|")
    for name, s, ratio, with_teachers in rows:
        print(f"| {name} | {s:.2f} | {ratio:.2f} | {with_teachers:.2f} |")


if __name__ == "__main__":
    main()
