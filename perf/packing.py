"""Small cells per hour: one cell per process against several runs per process (`seeds_per_job`).

The same `cells` digits cells of the default grid (cosine loss, 10 per class, split 0, seeds
0..cells-1) are trained through the real CLI (`python -m benchmark train --pack ...`, as the train rule
runs it), one process at a time, once as packs of one cell and once per pack size in `packs`, each
layout in a folder of its own (a record there would be kept, not retrained) with a fresh MLflow store
when MLflow is installed (it is not on the GPU machine) and on the device the cells would use. A pack
pays the process start, the imports, the data loading and the MLflow connection once instead of once
per cell.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

from benchmark.device import cuda_requested
from perf.common import timed, tracking_init
from perf.repo_copy import PYTHON, REPO

METHOD, SPC = "cosine", 10


def _configuration(config: dict, quick: bool):
    """The cells' configuration in the default grid (quick: trained for 1 epoch)."""
    from benchmark.grid import Configuration, cell_settings, settings_key

    settings = cell_settings(config, "digits", METHOD)
    if quick:
        settings["train"]["epochs"] = 1
    return Configuration("digits", METHOD, SPC, settings, settings_key(settings))


def _command(root: Path, configuration, seeds: list[int], config: dict, tracking: Path | None) -> list[str]:
    """The train rule's command line for the pack of `seeds` (split 0) under `root`."""
    from benchmark.grid import Pack

    pack = Pack(configuration, tuple((0, s) for s in seeds))
    command = [PYTHON, "-m", "benchmark", "train", "--pack", json.dumps(pack.spec(), sort_keys=True),
               "--marker", str(root / pack.marker), "--device", config["device"], "--threads", str(config["threads"]),
               "--eval-batch-size", str(config["eval_batch_size"]), "--cells-per-gpu", "1", "--grid", "perf"]
    command += ["--tracking", str(tracking)] if tracking else []
    return command + ["--receipt", str(root / "data" / "prepared" / "digits.json")]


def _run_layout(root: Path, pack: int, cells: int, config: dict, configuration, env: dict) -> float:
    """Wall seconds to train seeds 0..cells-1 in processes of `pack` seeds each, one after the other."""

    tracking = None
    if importlib.util.find_spec("mlflow") is not None:
        tracking = root / "store.json"
        tracking_init(f"pack{pack}", config, tracking, root, env)
    total = 0.0
    for first in range(0, cells, pack):
        seeds = list(range(first, min(cells, first + pack)))
        seconds, _ = timed(_command(root, configuration, seeds, config, tracking), root, env)
        total += seconds
    return total


def run(quick: bool, cells: int = 6, packs: list[int] | None = None) -> dict:
    packs = packs or [3, 6]
    from benchmark.config import load_config

    config = load_config(REPO / "config" / "config.yaml")
    configuration = _configuration(config, quick)
    layouts = []
    with tempfile.TemporaryDirectory(prefix="perf-packing-") as tmp:
        data = Path(tmp) / "digits"
        timed([PYTHON, "-m", "benchmark", "prepare", "digits", "--out", str(data)], REPO)
        timed([PYTHON, "-m", "benchmark", "data-receipt", "digits", "--data", str(data), "--out",
               str(Path(tmp) / "digits.json")], REPO)
        for pack in [1, *packs]:
            root = Path(tmp) / f"pack{pack}"
            (root / "data" / "prepared").mkdir(parents=True)
            (root / "data" / "prepared" / "digits").symlink_to(data)
            (root / "data" / "prepared" / "digits.json").symlink_to(Path(tmp) / "digits.json")
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
            seconds = _run_layout(root, pack, cells, config, configuration, env)
            written = len(list((root / "results" / "cells").rglob("metrics.json")))  # every cell trained
            layouts.append({"seeds_per_job": pack, "processes": -(-cells // pack), "cells_written": written,
                            "wall_s": round(seconds, 2), "cells_per_hour": round(3600 * cells / seconds)})
    base = layouts[0]["cells_per_hour"]
    for layout in layouts:
        layout["vs_one_per_process"] = round(layout["cells_per_hour"] / base, 2)
    device = "cuda" if cuda_requested(config["device"]) else "cpu"
    return {"device": device, "cells": cells, "cell": f"digits/{METHOD}/spc{SPC}",
            "epochs": configuration.settings["train"]["epochs"],
            "tracking": importlib.util.find_spec("mlflow") is not None, "layouts": layouts}
