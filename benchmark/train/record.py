"""The test of a trained cell and its record: the content of metrics.json (see the README)."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from benchmark.evaluate import accuracy, balanced_accuracy, confusion, per_class_accuracy
from benchmark.train.build import CellRun
from benchmark.train.loop import Progress, predict_images


def select_weights(run: CellRun, progress: Progress) -> int:
    """Load the weights to test (`select: best_val`: the best validation epoch's) and return their epoch
    (1-based: the epoch after which they were taken)."""
    if run.train["select"] == "best_val" and progress.best["state"] is not None:
        run.evaluated.load_state_dict(progress.best["state"])
        return progress.best["epoch"] + 1
    return len(progress.curves["lr"])


def test_and_record(run: CellRun, progress: Progress, timing: dict, resumed: bool) -> dict:
    """Evaluate the selected weights on the test set, once, and return the cell's results.

    Accuracies are fractions (metrics.json is a machine record; tables and logs show percent); epochs are
    1-based; curves hold one value per epoch, epoch 1 first.
    """
    tested_epoch = select_weights(run, progress)
    curves, val = progress.curves, run.val_idx
    test: dict = {"test_accuracy": None, "test_balanced_accuracy": None, "per_class_accuracy": None}
    if "trial" not in run.settings:  # a tuning trial is scored on its validation split and never tests
        test_idx = run.prepared.test_idx
        started = time.perf_counter()
        pred = predict_images(run, test_idx)  # the one use of the test set
        timing["test_s"] = time.perf_counter() - started
        target = run.prepared.labels[test_idx]
        test = {"test_accuracy": accuracy(pred, target),
                "test_balanced_accuracy": balanced_accuracy(pred, target, run.prepared.num_classes),
                "per_class_accuracy": per_class_accuracy(pred, target, run.prepared.num_classes),
                "confusion": confusion(pred, target, run.prepared.num_classes)}
    metrics = {
        "cell": asdict(run.cell),
        "status": progress.status,
        **test,
        "tested_epoch": tested_epoch,
        "validation": {
            "fraction": run.train["validation_fraction"],
            "images": int(val.size),
            "select": run.train["select"],
            "best_accuracy": progress.best["accuracy"] if val.size else None,
            "best_epoch": None if progress.best["epoch"] is None else progress.best["epoch"] + 1,
            "final_accuracy": curves["val_accuracy"][-1] if curves.get("val_accuracy") else None,
        },
        "epochs_run": len(curves["train_loss"]),
        "steps_per_epoch": run.steps,
        "train_images": int(run.train_idx.size),
        "train_class_counts": np.bincount(run.prepared.labels[run.train_idx],
                                          minlength=run.prepared.num_classes).tolist(),
        "num_classes": run.prepared.num_classes,
        "curves": curves,
        "wall_time_s": progress.elapsed_s + time.perf_counter() - run.started,
        "resumed": resumed,
        "device": str(run.runtime.device),
        "runtime": run.runtime.describe(),
        "timing": timing,
        "data_hash": run.data_hash,
    }
    if run.embeddings is not None:
        metrics["class_embeddings"] = run.embeddings
    return metrics
