"""Fixed cost of one cell job: what a job pays besides training.

The real CLI (`python -m benchmark train`, with the arguments the train rule passes) runs a digits
cell trained for one epoch of one step, so almost all of its wall time is fixed cost: interpreter
start, imports, data loading, model building, evaluation, provenance and, with --tracking, MLflow.
Each mode runs once untimed (warming the page cache, as in a workflow where many jobs run), then
`repeats` times, each a new cell (another seed) so that MLflow logs a new run as in a fresh grid.

When training records `metrics["timing"]["process_to_first_step_s"]` it is reported too; it is
the target's figure (process start to the first training step).

Import costs: wall time of `python -c "import X"` minus that of `python -c pass`, median of runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from perf.common import repo_on_path, stats, timed
from perf.repo_copy import PYTHON, REPO

IMPORTS = ("torch", "benchmark.train", "mlflow", "benchmark.tracking")
LOSS = "softmax_ce"
SPC = 5


def cell_settings_json() -> str:
    """The default grid's settings of a digits cell, cut to one epoch of one step."""
    from benchmark.config import cell_settings, load_config

    config = load_config(REPO / "config" / "config.yaml")
    settings = cell_settings(config, "digits", LOSS)
    settings["train"].update(epochs=1, steps_per_epoch=1)
    return json.dumps(settings, sort_keys=True)


def train_command(root: Path, settings: str, seed: int, tracking: Path | None) -> list[str]:
    """The train rule's command line for one cell under `root` (results/cells/..., a checkpoint path)."""
    cell = root / "results" / "cells" / "digits" / LOSS / f"spc{SPC}" / f"seed{seed}"
    cmd = [PYTHON, "-m", "benchmark", "train", "--dataset", "digits", "--loss", LOSS, "--spc", str(SPC),
           "--seed", str(seed), "--settings", settings, "--data", str(root / "data" / "prepared" / "digits"),
           "--out", str(cell / "metrics.json"), "--device", "auto", "--threads", "1", "--cells-per-gpu", "1",
           "--checkpoint", str(cell / "checkpoint.pt")]
    if tracking is not None:
        cmd[cmd.index("--device"):cmd.index("--device")] = ["--tracking", str(tracking)]
    return cmd


def metrics_path(cmd: list[str]) -> Path:
    return Path(cmd[cmd.index("--out") + 1])


def time_mode(root: Path, env: dict, settings: str, tracking: Path | None, repeats: int, first_seed: int,
              warmup: bool) -> dict:
    """Wall times of `repeats` train processes (after one untimed warm-up) and their recorded timings."""
    walls, first_step, timing = [], [], {}
    for i in range(repeats + warmup):
        cmd = train_command(root, settings, first_seed + i, tracking)
        seconds, _ = timed(cmd, root, env)
        timing = json.loads(metrics_path(cmd).read_text()).get("timing") or {}
        if warmup and i == 0:
            continue
        walls.append(seconds)
        if timing.get("process_to_first_step_s") is not None:
            first_step.append(float(timing["process_to_first_step_s"]))
    return {
        "wall": stats(walls),
        "process_to_first_step_s": statistics.median(first_step) if first_step else None,
        "process_to_first_step_runs_s": first_step or None,
        "last_timing": timing or None,
    }


def import_cost(module: str, baseline_s: float, runs: int, cwd: Path) -> dict:
    walls = [timed([PYTHON, "-c", f"import {module}"], cwd)[0] for _ in range(runs)]
    return {"median_s": max(0.0, statistics.median(walls) - baseline_s), "raw_median_s": statistics.median(walls)}


def top_imports(module: str, cwd: Path, count: int = 8) -> list[dict]:
    """The costliest packages `import module` loads, from `python -X importtime`.

    Per top-level package (first name component, the module's own package left out): the largest
    cumulative time of any of its lines, i.e. of its first import. Figures overlap (torch imports numpy).
    """
    result = subprocess.run([PYTHON, "-X", "importtime", "-c", f"import {module}"], cwd=cwd, env=repo_on_path(None),
                            capture_output=True, text=True, check=True)
    own = module.split(".")[0]
    best: dict[str, float] = {}
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        top = parts[2].strip().split(".")[0]
        if top != own:
            best[top] = max(best.get(top, 0.0), int(parts[1]) / 1e6)
    ranked = sorted(best.items(), key=lambda item: -item[1])[:count]
    return [{"package": name, "cumulative_s": seconds} for name, seconds in ranked]


def imports(modules: list[str], runs: int, cwd: Path) -> dict:
    baseline = statistics.median(timed([PYTHON, "-c", "pass"], cwd)[0] for _ in range(runs))
    return {"python_startup_s": baseline, "runs": runs,
            "modules": {module: import_cost(module, baseline, runs, cwd) for module in modules},
            "top_imports": {m: top_imports(m, cwd) for m in modules if m.startswith("benchmark.")}}


def run(quick: bool, repeats: int | None = None, import_runs: int | None = None, warmup: bool = True,
        modules: list[str] | None = None) -> dict:
    """Time the train CLI without and with MLflow (`repeats` runs each) and the imports of `modules`."""
    repeats = repeats or (3 if quick else 5)
    import_runs = import_runs or (3 if quick else 5)
    modules = list(IMPORTS if modules is None else modules)
    with tempfile.TemporaryDirectory(prefix="perf-fixed-cost-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        prepare_s, _ = timed([PYTHON, "-m", "benchmark", "prepare", "digits", "--params",
                              str(REPO / "config" / "datasets.yaml"), "--out", str(root / "data/prepared/digits")],
                             root, env)
        tracking = root / "results" / "tracking" / "perf.json"
        init_s, _ = timed([PYTHON, "-m", "benchmark", "tracking-init", "--grid", "perf", "--out", str(tracking)],
                          root, env)
        settings = cell_settings_json()
        modes = {
            "no_tracking": time_mode(root, env, settings, None, repeats, 0, warmup),
            "tracking": time_mode(root, env, settings, tracking, repeats, 100, warmup),
        }
        import_costs = imports(modules, import_runs, root)
    return {
        "cell": f"digits/{LOSS}/spc{SPC}, 1 epoch of 1 step, device auto, 1 thread",
        "repeats": repeats,
        "warmup": warmup,
        "prepare_digits_s": prepare_s,
        "tracking_init_s": init_s,
        "modes": modes,
        "imports": import_costs,
    }
