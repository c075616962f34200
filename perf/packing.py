"""Small cells per hour: one cell per process against several seeds per process (`seeds_per_job`).

The same `cells` digits cells of the default grid (cosine loss, 10 per class, seeds 0..cells-1)
are trained through the real CLI, one process at a time, once as one process per cell and once per
pack size in `packs`, each with a fresh MLflow store when MLflow is installed (it is not on the GPU
machine) and on the device the cells would use. A pack pays the process start, the imports, the
data loading and the MLflow connection once instead of once per cell.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

from benchmark.device import cuda_requested
from perf.common import timed
from perf.repo_copy import PYTHON, REPO

LOSS, SPC = "cosine", 10


def _settings(quick: bool) -> str:
    from benchmark.config import cell_settings, load_config

    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", LOSS)
    if quick:
        settings["train"]["epochs"] = 1
    return json.dumps(settings, sort_keys=True)


def _command(root: Path, seeds: list[int], settings: str, tracking: Path | None) -> list[str]:
    cells = [root / "results" / "cells" / f"seed{s}" for s in seeds]
    command = [PYTHON, "-m", "benchmark", "train", "--dataset", "digits", "--loss", LOSS, "--spc", str(SPC),
               "--seed", *map(str, seeds), "--settings", settings, "--data", str(root / "digits"),
               "--out", *(str(c / "metrics.json") for c in cells),
               "--checkpoint", *(str(c / "checkpoint.pt") for c in cells)]
    return command + (["--tracking", str(tracking)] if tracking else [])


def _run_layout(root: Path, pack: int, cells: int, settings: str, env: dict) -> float:
    """Wall seconds to train seeds 0..cells-1 in processes of `pack` seeds each, one after the other."""
    tracking = None
    if importlib.util.find_spec("mlflow") is not None:
        tracking = root / "tracking.json"
        timed([PYTHON, "-m", "benchmark", "tracking-init", "--grid", f"pack{pack}", "--out", str(tracking)],
              REPO, env)
    total = 0.0
    for first in range(0, cells, pack):
        seconds, _ = timed(_command(root, list(range(first, min(cells, first + pack))), settings, tracking), REPO, env)
        total += seconds
    return total


def run(quick: bool, cells: int = 6, packs: list[int] | None = None) -> dict:
    packs = packs or [3, 6]
    settings = _settings(quick)
    layouts = []
    with tempfile.TemporaryDirectory(prefix="perf-packing-") as tmp:
        data = Path(tmp) / "digits"
        timed([PYTHON, "-m", "benchmark", "prepare", "digits", "--out", str(data)], REPO)
        for pack in [1, *packs]:
            root = Path(tmp) / f"pack{pack}"
            root.mkdir()
            (root / "digits").symlink_to(data)
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
            seconds = _run_layout(root, pack, cells, settings, env)
            written = len(list((root / "results" / "cells").glob("seed*/metrics.json")))  # every cell trained
            layouts.append({"seeds_per_job": pack, "processes": -(-cells // pack), "cells_written": written,
                            "wall_s": round(seconds, 2), "cells_per_hour": round(3600 * cells / seconds)})
    base = layouts[0]["cells_per_hour"]
    for layout in layouts:
        layout["vs_one_per_process"] = round(layout["cells_per_hour"] / base, 2)
    device = "cuda" if cuda_requested("auto") else "cpu"
    return {"device": device, "cells": cells, "cell": f"digits/{LOSS}/spc{SPC}",
            "epochs": json.loads(settings)["train"]["epochs"],
            "tracking": importlib.util.find_spec("mlflow") is not None, "layouts": layouts}
