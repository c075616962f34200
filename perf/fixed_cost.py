"""Fixed cost of one training job: what a job pays besides training.

The real CLI (`python -m benchmark train --pack ... --marker ...`, with the arguments the train rule
passes) runs a pack of one digits cell trained for one epoch of one step, so almost all of its wall time
is fixed cost: interpreter start, imports, data loading, model building, evaluation, the record and,
with --tracking, MLflow. Each mode runs once untimed (warming the page cache, as in a workflow where many
jobs run), then `repeats` times, each a new cell (another seed) so that MLflow logs a new run as in a
fresh grid.

The record's `timing.process_to_first_step_s` is reported too: the target's figure (process start to
the first training step).

Import costs: wall time of `python -c "import X"` minus that of `python -c pass`, median of runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from perf.common import repo_on_path, stats, timed, tracking_init
from perf.repo_copy import PYTHON, REPO

IMPORTS = ("torch", "benchmark.train", "mlflow", "benchmark.tracking")
METHOD = "softmax_ce"
SPC = 5


def default_config() -> dict:
    from benchmark.config import load_config

    return load_config(REPO / "config" / "config.yaml")


def cell_spec(config: dict, seed: int) -> dict:
    """The pack spec of one default-grid digits cell (split 0, `seed`), cut to one epoch of one step."""
    from benchmark.grid import Configuration, Pack, cell_settings, settings_key

    settings = cell_settings(config, "digits", METHOD)
    settings["train"].update(epochs=1, steps_per_epoch=1)
    configuration = Configuration("digits", METHOD, SPC, settings, settings_key(settings))
    return Pack(configuration, ((0, seed),)).spec()


def train_command(root: Path, config: dict, spec: dict, tracking: Path | None) -> list[str]:
    """The train rule's command line for the pack `spec` under `root` (its marker beside its cells)."""
    split, seed = spec["runs"][0]
    cmd = [PYTHON, "-m", "benchmark", "train", "--pack", json.dumps(spec, sort_keys=True),
           "--marker", str(root / spec["folder"] / f"split{split}_seed{seed}.pack"), "--device", "auto",
           "--threads", str(config["threads"]), "--eval-batch-size", str(config["eval_batch_size"]),
           "--cells-per-gpu", "1", "--grid", "perf"]
    if tracking is not None:
        cmd += ["--tracking", str(tracking)]
    return cmd + ["--receipt", str(root / "data" / "prepared" / "digits.json")]


def time_mode(root: Path, env: dict, config: dict, tracking: Path | None, repeats: int, first_seed: int,
              warmup: bool) -> dict:
    """Wall times of `repeats` train processes (after one untimed warm-up) and their recorded timings."""
    walls, first_step, timing = [], [], {}
    for i in range(repeats + warmup):
        spec = cell_spec(config, first_seed + i)
        seconds, _ = timed(train_command(root, config, spec, tracking), root, env)
        split, seed = spec["runs"][0]
        record = root / spec["folder"] / f"split{split}" / f"seed{seed}" / "metrics.json"
        timing = json.loads(record.read_text()).get("timing") or {}
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
    config = default_config()
    with tempfile.TemporaryDirectory(prefix="perf-fixed-cost-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        data = root / "data" / "prepared" / "digits"
        prepare_s, _ = timed([PYTHON, "-m", "benchmark", "prepare", "digits", "--params",
                              str(REPO / "config" / "datasets.yaml"), "--out", str(data)], root, env)
        timed([PYTHON, "-m", "benchmark", "data-receipt", "digits", "--data", str(data), "--out",
               f"{data}.json"], root, env)
        tracking = root / "results" / "tracking" / "perf" / "store.json"
        init_s = tracking_init("perf", config, tracking, root, env)
        modes = {
            "no_tracking": time_mode(root, env, config, None, repeats, 0, warmup),
            "tracking": time_mode(root, env, config, tracking, repeats, 100, warmup),
        }
        import_costs = imports(modules, import_runs, root)
    return {
        "cell": f"digits/{METHOD}/spc{SPC}, a pack of one cell, 1 epoch of 1 step, device auto, "
                f"{config['threads']} thread(s)",
        "repeats": repeats,
        "warmup": warmup,
        "prepare_digits_s": prepare_s,
        "tracking_init_s": init_s,
        "modes": modes,
        "imports": import_costs,
    }
