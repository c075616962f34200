"""Train and evaluate one cell, in the order the data flows:

1. build (benchmark/train/build.py): device, prepared data on the device, the cell's training subset
   and validation split, the method (model + objective), the optimiser, the seeded generators;
2. the loop (benchmark/train/loop.py): epochs of a fixed number of SGD steps, curves, validation,
   checkpoints on SIGTERM and periodically;
3. the test and the record (benchmark/train/record.py): the selected weights are tested once and the
   cell's metrics returned (written as metrics.json by the caller).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmark import checkpoint
from benchmark.train.build import Cell, CellRun, build_cell
from benchmark.train.loop import Progress, restore, train_epochs
from benchmark.train.record import test_and_record

__all__ = ["Cell", "CellRun", "train_cell", "cell_fingerprint"]


def cell_fingerprint(cell: Cell, settings: dict, data_version: str) -> str:
    """What a checkpoint must match to be resumed: the cell, its settings (bar threads) and its data."""
    from dataclasses import asdict

    return checkpoint.fingerprint(cell=asdict(cell), settings={k: v for k, v in settings.items() if k != "threads"},
                                  data=data_version)


def process_age_s() -> float:
    """Seconds since this process started (its start time in /proc counts from boot; 0 where unavailable)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def train_cell(cell: Cell, settings: dict, data_dir: Path, checkpoint_path: Path | None = None,
               checkpoint_every_s: float = 600.0) -> dict:
    """Train one cell and return its metrics.

    With `checkpoint_path`, a checkpoint there made by this same cell, settings and data is resumed;
    one is saved on SIGTERM (then `checkpoint.Preempted` is raised) and every `checkpoint_every_s` at an
    epoch's end, so a crash loses at most that much work.
    """
    run = build_cell(cell, settings, data_dir)
    checkpoints = None
    progress, resumed = Progress(), False
    if checkpoint_path is not None:
        checkpoints = checkpoint.Checkpoints(checkpoint_path, cell_fingerprint(cell, settings, run.data_hash),
                                             checkpoint_every_s)
        saved = checkpoints.load()
        if saved is not None:
            progress, resumed = restore(run, saved), True
            print(f"{cell.key}: resuming from {checkpoint_path} at epoch {progress.epoch + 1}, step {progress.step}",
                  flush=True)
    timing: dict = {"process_to_first_step_s": None, "train_s": 0.0}

    def first_step() -> None:  # in a pack, later cells count the earlier ones too
        timing["process_to_first_step_s"] = process_age_s()
        timing["setup_s"] = time.perf_counter() - run.started

    train_started = time.perf_counter()
    train_epochs(run, progress, checkpoints, first_step)
    timing["train_s"] = time.perf_counter() - train_started
    return test_and_record(run, progress, timing, resumed)
