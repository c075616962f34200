"""The pack protocol: one training job trains the cells of a pack, one after the other, never losing one.

A pack is up to `seeds_per_job` runs (split, seed) of one configuration (benchmark/grid.py). For each
cell the job takes the cell's lock (two grids sharing a cell may run at once), then:
- a record (metrics.json) that is this cell's result with these settings, data and code: kept as it is
  (a finished cell is never retrained, whichever grid or pack trained it);
- a record made by other settings, data or code: set aside as metrics.json.stale, then the cell trains;
- otherwise the cell trains, resuming its checkpoint when the checkpoint was made by this same cell,
  settings, data and code (benchmark/checkpoint.py sets any other aside).
A finished cell writes its record first, then tells the tracking store (benchmark/tracking.py; a store
that fails only leaves the cell marked as not yet logged, for the grid's `track` job). When every cell
has its record the job writes the pack's marker, its only Snakemake output: Snakemake deletes the
outputs of a failed job, and the cells' records are not among them.
SIGTERM (preemption) saves the running cell's checkpoint and exits with 75; the rerun resumes it.
While a cell trains, its progress.json (benchmark/progress.py) says so, for `python -m benchmark status`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
import time
from pathlib import Path

from benchmark import checkpoint
from benchmark.code import cell_roots, code_files, code_hash
from benchmark.data.prepared import data_hash
from benchmark.io import file_hash, write_atomic, write_json
from benchmark.progress import ProgressFile, error_line
from benchmark.records import DataReceiptError, RecordError, mismatch, read_record
from benchmark.train import Cell, RunOptions, train_cell

WEIGHTS = "weights.pt"  # a cell's final weights, saved when a later cell (a student) needs them


def prepared_data_hash(folder: Path, receipt: Path | None) -> str:
    """The hash of the prepared data the pack trains on, checked against the workflow's data receipt."""
    from benchmark.data.prepared import load_metadata

    found = data_hash(load_metadata(folder))
    if receipt is not None and receipt.exists():
        expected = json.loads(receipt.read_text())["data_hash"]
        if expected != found:
            raise DataReceiptError(
                f"{folder} holds data {found} but {receipt} says it was prepared as {expected}: it was replaced "
                f"outside the workflow; run `dvc checkout {folder}` or delete {receipt} to prepare it again")
    return found


@contextlib.contextmanager
def cell_lock(cell_dir: Path):
    """Hold the cell's lock file while it is trained: a second job asking for the same cell waits for it."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    with open(cell_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{cell_dir}: another job is training this cell; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def usable_record(path: Path, coordinates: dict, identity: dict) -> dict | None:
    """The record at `path` if it is this cell's result with `identity`; a record made by anything else is set
    aside as <name>.stale with one line, so that a stale result can neither be used nor lost."""
    if not path.exists():
        return None
    try:
        record = read_record(path)
        problem = mismatch(record, coordinates, identity)
    except RecordError as error:
        problem = str(error)
        record = None
    if problem is None:
        return record
    aside = path.with_name(path.name + ".stale")
    path.replace(aside)
    print(f"{path} set aside as {aside.name}: {problem}; the cell trains again", file=sys.stderr, flush=True)
    return None


def apply_selection(settings: dict, selection: Path) -> tuple[dict, str]:
    """The settings with the tuned values of `selection` in place of "tuned", and the selection's digest."""
    from benchmark.tuning import apply_point, selected_values

    effective = dict(settings)
    effective["train"] = apply_point(settings["train"], selected_values(selection))
    return effective, file_hash(selection)[:16]


def summary_line(record: dict, cell: Cell, kept: bool = False) -> str:
    """The one line a finished cell prints to the workflow's console (`kept`: its record was already there, for
    these settings, data and code, and it was not trained again)."""
    if record["test_accuracy"] is None:  # a tuning trial
        best = record["validation"]["final_accuracy"]
        result = f"trial, {100.0 * best:.1f}% final validation accuracy" if best is not None else "trial"
    else:
        result = f"{100.0 * record['test_accuracy']:.1f}% test accuracy"
    status = "" if record["status"] == "ok" else f" ({record['status']})"
    how = "kept from an earlier run" if kept else "in"
    return (f"{cell.name}: {result}{status}, {record['epochs_run']} epochs {how} "
            f"{record['wall_time_s']:.1f} s on {record['device']}")


def run_pack(spec: dict, marker: Path, options: RunOptions, context: dict, receipt: Path | None = None,
             checkpoint_every_s: float = 600.0) -> None:
    """Train the pack `spec` (benchmark.grid.Pack.spec) and write its marker; see the module docstring."""
    checkpoint.install_sigterm_handler()
    configuration = ConfigurationRun(spec, options, context, receipt, checkpoint_every_s)
    done = []
    for split, seed in spec["runs"]:
        record = configuration.cell(split, seed)
        path = configuration.cell_dir(split, seed) / "metrics.json"
        done.append({"cell": record["cell"], "record": str(path), "sha256": file_hash(path)})
        print(summary_line(record, configuration.cell_of(split, seed), configuration.kept), flush=True)
    write_json(marker, {"pack": spec["key"], "identity": configuration.identity, "cells": done})


class ConfigurationRun:
    """The cells of one configuration as a job trains them: identity, settings, the per-cell protocol."""

    def __init__(self, spec: dict, options: RunOptions, context: dict, receipt: Path | None,
                 checkpoint_every_s: float) -> None:
        self.spec, self.options, self.context, self.every = spec, options, context, checkpoint_every_s
        self.settings, self.folder = spec["settings"], Path(spec["folder"])
        self.kept = False  # whether the last cell() found its record already there
        self.identity = {"settings": spec["key"], "code": code_hash(code_files(cell_roots(self.settings))),
                         "data": prepared_data_hash(Path(spec["data"]), receipt)}
        if "selection" in spec:  # tuned protocol: train with the values the search selected
            self.settings, self.identity["selection"] = apply_selection(self.settings, Path(spec["selection"]))
        if "role" in spec:  # a teacher that is no table row: its MLflow runs say so
            self.context = {**context, "role": spec["role"]}
        describe_configuration(self.folder, spec)

    def cell_of(self, split: int, seed: int) -> Cell:
        return Cell(self.spec["dataset"], self.spec["method"], self.spec["spc"], split, seed)

    def cell_dir(self, split: int, seed: int) -> Path:
        return self.folder / f"split{split}" / f"seed{seed}"

    def cell(self, split: int, seed: int, until_epoch: int | None = None) -> dict:
        """The cell's record (kept, or trained now); with `until_epoch` possibly only its partial results."""
        from benchmark.provenance import provenance
        from benchmark.tracking import CellTracker

        cell = self.cell_of(split, seed)
        coordinates = {"dataset": cell.dataset, "method": cell.method, "samples_per_class": cell.samples_per_class,
                       "split": split, "seed": seed}
        cell_dir = self.cell_dir(split, seed)
        save_weights = self.spec.get("save_weights", False)
        teacher = Path(self.spec["teacher_folder"]) / f"split{split}" / f"seed{seed}" / WEIGHTS \
            if "teacher_folder" in self.spec else None
        with cell_lock(cell_dir):
            # A student's record is its result only for the teacher weights it was trained from.
            identity = self.identity if teacher is None else {**self.identity, "teacher": teacher_identity(teacher)}
            record = usable_record(cell_dir / "metrics.json", coordinates, identity)
            if record is not None and save_weights and not (cell_dir / WEIGHTS).exists():
                print(f"{cell_dir}: a later cell needs this cell's final weights, which were not saved; training it "
                      "again to save them", file=sys.stderr, flush=True)
                record = None
            self.kept = record is not None
            if record is None:
                record = _train(cell, coordinates, identity, self.settings, self.options,
                                Path(self.spec["data"]), cell_dir, self.context, self.every, CellTracker, provenance,
                                teacher, cell_dir / WEIGHTS if save_weights else None, until_epoch)
        return record


def teacher_identity(weights: Path) -> str:
    """A hash of the teacher cell's final weights (tensor names and bytes, not the file's: torch.save names the
    archive after the temporary file): a student whose teacher was retrained to other weights trains again."""
    import hashlib

    import torch

    if not weights.exists():
        raise RecordError(f"{weights} is missing: the teacher's cell must be trained first, saving its weights; run "
                          "the workflow (it trains the teacher's pack before the student's)")
    digest = hashlib.sha256()
    for name, value in sorted(torch.load(weights, map_location="cpu", weights_only=True).items()):
        data = value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() \
            if isinstance(value, torch.Tensor) else repr(value).encode()
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:16]


def describe_configuration(folder: Path, spec: dict) -> None:
    """settings.json beside the cells: what the settings key in the folder's name stands for, and for a
    teacher or a student which is which (`role`, `teacher_folder`)."""
    path = folder / "settings.json"
    content = {"dataset": spec["dataset"], "method": spec["method"], "samples_per_class": spec["spc"],
               "key": spec["key"], "settings": spec["settings"]}
    content.update({k: spec[k] for k in ("role", "teacher_folder") if k in spec})
    if not path.exists() or json.loads(path.read_text()) != content:
        write_json(path, content)


def _train(cell: Cell, coordinates: dict, identity: dict, settings: dict, options: RunOptions, data: Path,
           cell_dir: Path, context: dict, checkpoint_every_s: float, tracker_class, provenance,
           teacher: Path | None, weights: Path | None, until_epoch: int | None = None) -> dict:
    fingerprint = checkpoint.fingerprint(cell=coordinates, identity=identity)
    checkpoints = checkpoint.Checkpoints(cell_dir / "checkpoint.pt", fingerprint, checkpoint_every_s)
    tracker = tracker_class(context, cell_dir, coordinates, settings, identity)
    progress = ProgressFile(cell_dir, settings["train"]["epochs"])  # for `python -m benchmark status`

    def on_epoch(run, state, metrics: dict) -> None:
        progress.epoch(state.epoch, metrics["epoch_s"])
        tracker.epoch(run, state, metrics)

    started = time.time()
    log = cell_dir / "cell.log"
    with open(log, "a") as out, contextlib.redirect_stdout(out):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {cell.name} (settings {identity['settings']}, code "
              f"{identity['code']}, data {identity['data']})", flush=True)
        try:
            results = train_cell(cell, settings, options, data, checkpoints, on_epoch, teacher, weights, until_epoch)
        except checkpoint.Preempted as stop:
            tracker.stopped("KILLED")
            progress.stopped("preempted", str(stop))
            print(f"{cell.name}: {stop}", flush=True)
            print(f"{cell.name}: {stop}", file=sys.stderr, flush=True)
            sys.exit(checkpoint.EXIT_PREEMPTED)
        except BaseException as error:
            tracker.stopped("FAILED")
            progress.stopped("failed", error_line(error))
            raise
    if "paused_at" in results:  # successive halving: this trial goes on at the next rung, if it survives
        tracker.stopped("KILLED")
        progress.stopped("paused", f"paused after epoch {results['paused_at']} (successive halving)")
        return results
    confusion = results.pop("confusion", None)
    if confusion is not None:  # a C x C table: beside the record, not in it (555 classes for NABirds)
        write_atomic(cell_dir / "confusion.csv", "\n".join(",".join(map(str, row)) for row in confusion) + "\n")
    record = {**results, "cell": coordinates, "identity": identity, "settings": settings,
              "provenance": {**provenance(results["device"]), **context.get("provenance", {})},
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))}
    write_json(cell_dir / "metrics.json", record)  # the result first: it exists means the cell is complete
    checkpoints.discard()
    progress.finished()
    tracker.finished(record, log)  # then the store; a failure only leaves the cell to be logged later
    return record


def run_halving(spec: dict, options: RunOptions, context: dict, receipt: Path | None = None,
                checkpoint_every_s: float = 600.0) -> dict:
    """The successive-halving job of one (dataset, method, spc): benchmark.tuning.run_halving with its trials
    trained, paused and resumed through the same per-cell protocol as every pack."""
    from benchmark.tuning import run_halving as halving

    checkpoint.install_sigterm_handler()
    runs = [ConfigurationRun({**trial, "runs": spec["runs"], "data": spec["data"]}, options, context, receipt,
                             checkpoint_every_s) for trial in spec["trials"]]

    def train_trial(i: int, split: int, seed: int, until: int) -> dict:
        result = runs[i].cell(split, seed, until)
        return {**result, "path": str(runs[i].cell_dir(split, seed) / "metrics.json")}

    return halving(spec, train_trial)
