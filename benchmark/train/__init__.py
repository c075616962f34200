"""Train and evaluate one cell, in the order the data flows:

1. build (benchmark/train/build.py): device, prepared data on the device, the cell's training subset
   and validation split, the method (model + objective), the optimiser, the seeded generators;
2. the loop (benchmark/train/loop.py): epochs of a fixed number of SGD steps, curves, validation,
   checkpoints on SIGTERM and periodically;
3. the test and the record (benchmark/train/record.py): the selected weights are tested once and the
   cell's results returned (the pack protocol, benchmark/packs.py, writes them as metrics.json).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from benchmark.checkpoint import Checkpoints
from benchmark.train.build import Cell, CellRun, RunOptions, build_cell
from benchmark.train.loop import Progress, restore, train_epochs
from benchmark.train.record import test_and_record

__all__ = ["Cell", "CellRun", "Progress", "RunOptions", "train_cell"]


def process_age_s() -> float:
    """Seconds since this process started (its start time in /proc counts from boot; 0 where unavailable)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def train_cell(cell: Cell, settings: dict, options: RunOptions, data_dir: Path,
               checkpoints: Checkpoints | None = None,
               on_epoch: Callable[[CellRun, Progress, dict], None] | None = None,
               teacher: Path | None = None, weights: Path | None = None, until_epoch: int | None = None) -> dict:
    """Train one cell and return its results (see the README's metrics.json).

    With `checkpoints`, a checkpoint made by this same cell, settings, data and code is resumed; one is
    saved on SIGTERM (then `checkpoint.Preempted` is raised) and periodically at an epoch's end, so a crash
    loses at most that much work. `on_epoch(run, progress, epoch_metrics)` is called after every epoch
    (live tracking). `teacher`: the final weights of the cell's teacher (its settings are in
    settings["teacher"]); `weights`: where to save this cell's final (tested) weights. `until_epoch`
    (successive halving): stop after that many epochs, save a checkpoint and return only
    {"paused_at", "status", "curves"}; a later call with a larger one resumes.
    """
    run = build_cell(cell, settings, options, data_dir, teacher)
    progress, resumed = Progress(), False
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None:
        progress, resumed = restore(run, saved), True
        print(f"{cell.name}: resuming from {checkpoints.path} at epoch {progress.epoch + 1}, step {progress.step}",
              flush=True)
    timing: dict = {"process_to_first_step_s": None, "train_s": 0.0}

    def first_step() -> None:  # in a pack, later cells count the earlier ones too
        timing["process_to_first_step_s"] = process_age_s()
        timing["setup_s"] = time.perf_counter() - run.started

    train_started = time.perf_counter()
    train_epochs(run, progress, checkpoints, first_step, on_epoch, until_epoch)
    timing["train_s"] = time.perf_counter() - train_started
    if progress.status == "ok" and progress.epoch < run.train["epochs"] and until_epoch is not None \
            and progress.epoch >= until_epoch:
        from benchmark.train.loop import snapshot

        checkpoints.save(snapshot(run, progress, checkpoints.fingerprint))
        return {"paused_at": progress.epoch, "status": progress.status, "curves": progress.curves}
    results = test_and_record(run, progress, timing, resumed)
    if weights is not None:
        import torch

        from benchmark.io import atomic_path

        with atomic_path(weights) as tmp:
            torch.save(run.evaluated.state_dict(), tmp)
    return results
