"""Synthetic results in the workflow's layout: data receipts, cell records and pack markers.

The aggregation and dag parts need grids whose cells all have results, without training them. What is
written here is what the product accepts as real (benchmark/records.py, benchmark/aggregate.py): a
receipt data/prepared/<dataset>.json with the data hash, and per cell a metrics.json with the keys a
trained cell's record has, its coordinates and the identity the aggregate expects (settings key, code
hash of the modules it imports, data hash of the receipt). The values are plausible, not trained.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

DIGITS_TRAIN = 1297  # digits' training images ("all")
CLASSES = {"digits": 10}  # other datasets: OTHER_CLASSES (only per_class in the tables reads it)
OTHER_CLASSES = 100


def fake_data_hash(dataset: str) -> str:
    return hashlib.sha256(f"perf:{dataset}".encode()).hexdigest()[:16]


def write_receipts(datasets: list[str], root: Path) -> dict[str, str]:
    """A data receipt per dataset under `root` (as `python -m benchmark data-receipt` writes it); returns the hashes."""
    hashes = {}
    for dataset in datasets:
        hashes[dataset] = fake_data_hash(dataset)
        classes = CLASSES.get(dataset, OTHER_CLASSES)
        receipt = {"dataset": dataset, "prepared": f"data/prepared/{dataset}", "data_hash": hashes[dataset],
                   "classes": classes, "train": 30 * classes, "test": 10 * classes}
        path = root / "data" / "prepared" / f"{dataset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    return hashes


def fake_record(configuration, split: int, seed: int, identity: dict, rng: random.Random) -> dict:
    """A metrics.json of one cell with the keys benchmark/packs.py writes and plausible values."""
    classes = CLASSES.get(configuration.dataset, OTHER_CLASSES)
    spc = configuration.spc
    train_images = (DIGITS_TRAIN if configuration.dataset == "digits" else 30 * classes) if spc == "all" \
        else spc * classes
    epochs = configuration.settings["train"]["epochs"]
    diverged = rng.random() < 0.01
    accuracy = 0.1 if diverged else min(1.0, 0.75 + 0.2 * rng.random())
    lr = configuration.settings["train"]["lr"] if isinstance(configuration.settings["train"]["lr"], float) else 0.05
    return {
        "cell": configuration.coordinates(split, seed),
        "status": "diverged" if diverged else "ok",
        "test_accuracy": accuracy,
        "test_balanced_accuracy": accuracy - 0.005,
        "per_class_accuracy": [accuracy] * classes,
        "tested_epoch": epochs,
        "validation": {"fraction": 0.0, "images": 0, "select": "last", "best_accuracy": None, "best_epoch": None,
                       "final_accuracy": None},
        "epochs_run": epochs,
        "steps_per_epoch": 21,
        "train_images": train_images,
        "num_classes": classes,
        "curves": {"train_loss": [2.3 / e for e in range(1, epochs + 1)],
                   "lr": [lr * (1 - e / epochs) for e in range(epochs)]},
        "wall_time_s": 2.0 + rng.random(),
        "resumed": False,
        "device": "cpu",
        "runtime": {"compile": False, "deterministic": False, "memory_format": "channels_last", "precision": "fp32"},
        "timing": {"process_to_first_step_s": 1.5, "setup_s": 0.04, "test_s": 0.05, "train_s": 1.9},
        "data_hash": identity["data"],
        "identity": identity,
        "settings": configuration.settings,
        "provenance": {"code_commit": "0" * 40, "device_name": "x86_64", "host": "perf",
                       "packages": {"python": "3.11.7", "torch": "2.14.1", "mlflow": "3.17.2"}},
        "started": "2026-01-01T00:00:00+0000",
    }


def write_records(grid, root: Path) -> int:
    """A record for every cell of every pack of `grid` (its table's cells, and teachers' where it has them)
    under `root`; the receipts must exist (they give the data identity). Returns the number of cells."""
    from benchmark.aggregate import expected_identity

    rng = random.Random(0)
    identities: dict[str, dict] = {}
    written = 0
    for pack in grid.packs:
        configuration = pack.configuration
        if configuration.folder not in identities:
            identities[configuration.folder] = expected_identity(configuration, root)
        for split, seed in pack.runs:
            path = root / configuration.record(split, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            record = fake_record(configuration, split, seed, identities[configuration.folder], rng)
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            written += 1
    return written


def write_markers(grid, root: Path) -> int:
    """The marker of every pack of `grid` whose records exist (as run_pack writes it); returns how many."""
    written = 0
    for pack in grid.packs:
        paths = [root / record for record in pack.records]
        if not all(p.exists() for p in paths):
            continue
        cells = [{"cell": json.loads(p.read_text())["cell"], "record": record,
                  "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p, record in zip(paths, pack.records,
                                                                                            strict=True)]
        identity = json.loads(paths[0].read_text())["identity"]
        (root / pack.marker).write_text(json.dumps({"pack": pack.configuration.key, "identity": identity,
                                                    "cells": cells}, indent=2, sort_keys=True) + "\n")
        written += 1
    return written
