"""What the live MLflow run costs a default-grid cell, per epoch (the target: under 2% of an epoch).

A pack of `cells` default-grid cells (digits, softmax_ce, all images, 10 epochs; 3 runs, as the grid
packs them) is trained by the real train verb (`benchmark.__main__.main(["train", ...])`) in a child
process, once per mode, each with its own folder and SQLite store in the scratch folder:

- off: without --tracking;
- flush_default: with tracking, BENCHMARK_TRACKING_FLUSH_S unset (the product's default: the epochs'
  metrics are buffered and sent every FLUSH_S seconds and at the cell's end);
- flush_0: with tracking, BENCHMARK_TRACKING_FLUSH_S=0 (every epoch sent when it ends: the most that
  per-epoch logging can cost).

The child times every call of benchmark.tracking.CellTracker's methods from outside (perf/common.py
timed_calls; the product has no timer of its own) and notes each epoch's `epoch_s`, the epoch's own
time, which does not include the tracker. Reported per mode: the tracker's time in `epoch` (buffering,
and the sends when due) against the epoch time; the run's start (create the run, parameters, dataset
input) and finish (last send, final metrics, artefacts), once per cell, spread over its epochs; and
the cells' `train_s` from their records against the mode without tracking.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from perf.common import timed, timed_calls, tracking_init
from perf.repo_copy import PYTHON, REPO

METHOD, SPC = "softmax_ce", "all"
MODES = {"off": None, "flush_default": "", "flush_0": "0"}  # BENCHMARK_TRACKING_FLUSH_S: None = no tracking
TIMED = ("__init__", "epoch", "_flush", "finished", "stopped")  # CellTracker's methods


def child(out: Path, train_argv: list[str]) -> None:
    """Run the train verb with CellTracker's methods timed; write the calls' seconds and the epoch times."""
    import benchmark.tracking as tracking
    from benchmark.__main__ import main

    epochs: list[float] = []
    original = tracking.CellTracker.epoch

    def epoch(self, run, progress, metrics: dict) -> None:
        epochs.append(metrics["epoch_s"])
        original(self, run, progress, metrics)

    tracking.CellTracker.epoch = epoch
    with timed_calls([(tracking.CellTracker, name) for name in TIMED]) as calls:
        main(["train", *train_argv])
    out.write_text(json.dumps({"flush_s": tracking.FLUSH_S, "calls": calls, "epoch_s": epochs}))


def pack_spec(config: dict, mode: str, cells: int, epochs: int | None) -> dict:
    """The pack of seeds 0..cells-1 of the default grid's digits/softmax_ce/all under the folder `mode`."""
    import copy

    from benchmark.grid import Configuration, Grid, Pack, settings_key

    cell = next(c for c in Grid(config).configurations if (c.dataset, c.method, c.spc) == ("digits", METHOD, SPC))
    settings = copy.deepcopy(cell.settings)  # its selected rates included
    if epochs is not None:
        settings["train"]["epochs"] = epochs
    configuration = Configuration("digits", METHOD, SPC, settings, settings_key(settings))
    spec = Pack(configuration, tuple((0, seed) for seed in range(cells))).spec()
    spec["folder"] = f"{mode}/{spec['folder']}"
    return spec


def summarise(raw: dict, records: list[dict], wall_s: float) -> dict:
    """One mode's figures from the child's timings and the cells' records."""
    calls, epoch_s = raw["calls"], raw["epoch_s"]
    n_cells, n_epochs = len(calls["__init__"]), len(epoch_s)
    epoch_total, tracker_epoch = sum(epoch_s), sum(calls["epoch"])
    per_cell = sum(calls["__init__"]) + sum(calls["finished"]) + sum(calls["stopped"])
    return {
        "flush_s": raw["flush_s"],
        "cells": n_cells,
        "epochs": n_epochs,
        "epoch_s_median": statistics.median(epoch_s),
        "tracker_epoch_ms_mean": 1000 * tracker_epoch / n_epochs,
        "tracker_epoch_ms_max": 1000 * max(calls["epoch"]),
        "per_epoch_fraction": tracker_epoch / epoch_total,
        "flushes": len(calls["_flush"]),  # sends of the buffered epochs, when due and at the cell's end
        "flush_ms_mean": 1000 * statistics.mean(calls["_flush"]) if calls["_flush"] else None,
        "run_start_s": calls["__init__"],  # per cell: the first also connects to the store
        "run_finish_s": calls["finished"],
        "with_start_and_finish_fraction": (tracker_epoch + per_cell) / epoch_total,
        "train_s_median": statistics.median(r["timing"]["train_s"] for r in records),
        "process_wall_s": wall_s,
    }


def run(quick: bool, cells: int | None = None, epochs: int | None = None) -> dict:
    """Train the pack in each mode (quick: 1 cell of 3 epochs) and report the tracker's cost per epoch."""
    from benchmark.config import load_config

    cells = cells or (1 if quick else 3)
    epochs = epochs or (3 if quick else None)  # None: the default grid's
    config = load_config(REPO / "config" / "config.yaml")
    modes = {}
    with tempfile.TemporaryDirectory(prefix="perf-tracking-") as tmp:
        root = Path(tmp)
        data = root / "data" / "prepared" / "digits"
        timed([PYTHON, "-m", "benchmark", "prepare", "digits", "--params", str(REPO / "config" / "datasets.yaml"),
               "--out", str(data)], root)
        timed([PYTHON, "-m", "benchmark", "data-receipt", "digits", "--data", str(data), "--out", f"{data}.json"],
              root)
        for mode, flush in MODES.items():
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / mode / 'mlflow.db'}"}
            env.pop("BENCHMARK_TRACKING_FLUSH_S", None)
            if flush:
                env["BENCHMARK_TRACKING_FLUSH_S"] = flush
            spec = pack_spec(config, mode, cells, epochs)
            argv = ["--pack", json.dumps(spec, sort_keys=True), "--marker", str(root / spec["folder"] / "pack.pack"),
                    "--device", config["device"], "--threads", str(config["threads"]), "--eval-batch-size",
                    str(config["eval_batch_size"]), "--cells-per-gpu", "1", "--grid", "perf", "--receipt",
                    f"{data}.json"]
            if flush is not None:
                store = root / mode / "store.json"
                tracking_init("perf", config, store, root, env)
                argv += ["--tracking", str(store)]
            out = root / mode / "timings.json"
            wall, _ = timed([PYTHON, "-m", "perf.tracking", str(out), *argv], root, env)
            records = [json.loads((root / spec["folder"] / f"split{split}" / f"seed{seed}" / "metrics.json")
                                  .read_text()) for split, seed in spec["runs"]]
            modes[mode] = summarise(json.loads(out.read_text()), records, wall)
    for figures in modes.values():  # the epochs' own time too: what tracking costs besides its calls
        figures["epoch_s_vs_off"] = figures["epoch_s_median"] / modes["off"]["epoch_s_median"]
        figures["train_s_vs_off"] = figures["train_s_median"] / modes["off"]["train_s_median"]
    return {"cell": f"digits/{METHOD}/spc{SPC}", "cells": cells, "epochs_per_cell": modes["off"]["epochs"] // cells,
            "device": config["device"], "threads": config["threads"], "modes": modes}


if __name__ == "__main__":  # the child: python -m perf.tracking <timings.json> <train verb arguments...>
    child(Path(sys.argv[1]), sys.argv[2:])
