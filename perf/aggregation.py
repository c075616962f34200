"""Aggregation of a large grid: tables and plots from 10,000 synthetic cells.

Every cell of the synthetic grid (the default grid with more seeds) gets a metrics.json with the
layout train_cell writes (curves, settings, provenance...), so reading them costs what it costs on
real results. The real CLI `python -m benchmark aggregate --config <file>` is timed as a whole
process, then the same work in this process, split into collect / tables / plots. The files go to
a tmpfs where there is one (common.scratch_root): deleting 10,000 files from this disk takes longer
than the measurement.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from perf.common import scratch_root, stats, synthetic_grid, timed, write_yaml
from perf.repo_copy import PYTHON

FULL_SEEDS = 400  # 5 losses x 5 samples-per-class values x 400 seeds = 10,000 cells
QUICK_SEEDS = 40  # 1,000 cells
TRAIN_POOL = 1297  # digits' training images ("all")
EPOCHS = 10


def fake_metrics(cell: tuple, settings: dict, rng: random.Random) -> dict:
    """A metrics.json of `cell` with train_cell's keys and plausible values."""
    dataset, loss, spc, seed = cell
    train_images = TRAIN_POOL if spc == "all" else 10 * spc
    accuracy = min(1.0, 0.75 + 0.2 * rng.random())
    diverged = rng.random() < 0.01
    return {
        "cell": {"dataset": dataset, "loss": loss, "samples_per_class": spc, "seed": seed},
        "status": "diverged" if diverged else "ok",
        "test_accuracy": 0.1 if diverged else accuracy,
        "test_balanced_accuracy": 0.1 if diverged else accuracy - 0.005,
        "tested_epoch": EPOCHS - 1,
        "validation": {"fraction": 0.0, "images": 0, "select": "last", "best_accuracy": None, "best_epoch": None,
                       "final_accuracy": None},
        "epochs_run": EPOCHS,
        "steps_per_epoch": 21,
        "train_images": train_images,
        "num_classes": 10,
        "curves": {"train_loss": [2.3 / (e + 1) for e in range(EPOCHS)],
                   "lr": [0.05 * (1 - e / EPOCHS) for e in range(EPOCHS)]},
        "wall_time_s": 2.0 + rng.random(),
        "resumed": False,
        "device": "cpu",
        "data_hash": "4426a34e562e16c6",
        "settings": settings,
        "provenance": {"code_commit": "0" * 40, "device_name": "x86_64", "host": "perf",
                       "packages": {"python": "3.11.7", "torch": "2.14.1", "mlflow": "3.17.2"}},
        "mlflow_run_id": f"{rng.getrandbits(128):032x}",
    }


def write_cells(config: dict, root: Path) -> int:
    """Write a metrics.json for every cell of `config` under `root`; return the number of cells."""
    from benchmark.config import cell_dir, cell_settings, cells

    rng = random.Random(0)
    grid = cells(config)
    settings = {loss: cell_settings(config, "digits", loss) for loss in config["losses"]}
    for dataset, loss, spc, seed in grid:
        path = root / cell_dir(dataset, loss, spc, seed) / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fake_metrics((dataset, loss, spc, seed), settings[loss], rng), indent=2))
    return len(grid)


def in_process(config: dict, root: Path) -> dict:
    """Seconds of the CLI's steps timed in this process: collect, summarise, write_tables (which collects and
    summarises again, then writes .md/.tex/.csv) and the plots."""
    from benchmark.aggregate import collect, summarise, write_tables
    from benchmark.config import table_rows
    from benchmark.plots import plot_dataset

    start = time.perf_counter()
    frame = collect(config, root)
    collected = time.perf_counter()
    summarise(frame)
    summarised = time.perf_counter()
    write_tables(config, root / "inproc" / "tables" / config["grid"], root)
    tabled = time.perf_counter()
    for dataset in config["datasets"]:
        plot_dataset(frame, dataset, table_rows(config), root / "inproc" / "plots" / f"{config['grid']}_{dataset}")
    plotted = time.perf_counter()
    return {"collect_s": collected - start, "summarise_s": summarised - collected,
            "write_tables_s": tabled - summarised, "plots_s": plotted - tabled, "rows": len(frame)}


def run(quick: bool, seeds: int | None = None, repeats: int | None = None) -> dict:
    """Time the aggregation of a synthetic grid of 25 x `seeds` cells (default 10,000; 1,000 when quick)."""
    seeds = seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
    repeats = repeats or (1 if quick else 3)
    config = synthetic_grid(seeds)
    with tempfile.TemporaryDirectory(prefix="perf-aggregation-", dir=scratch_root()) as tmp:
        root = Path(tmp)
        config_file = write_yaml(root / "config" / "grid.yaml", config)
        start = time.perf_counter()
        count = write_cells(config, root)
        write_s = time.perf_counter() - start
        cmd = [PYTHON, "-m", "benchmark", "aggregate", "--config", str(config_file)]
        walls, output = [], ""
        for _ in range(repeats):
            seconds, output = timed(cmd, root)
            walls.append(seconds)
        found = len(list((root / "results" / "cells").rglob("metrics.json")))
        outputs = sorted(str(p.relative_to(root)) for p in (root / "results").glob("[tp]*/*") if p.is_file())
        steps = in_process(config, root)
    return {
        "cells": count,
        "scratch": str(Path(tmp).parent),
        "metrics_files": found,
        "write_cells_s": write_s,
        "subprocess": stats(walls),
        "in_process": steps,
        "outputs": outputs,
        "cli_output": output.strip().splitlines()[-1] if output.strip() else "",
    }
