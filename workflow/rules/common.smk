# Config validation, the grid's packs, fail-fast checks and the small helpers the rules read.
import json
import os
import subprocess
import sys
from pathlib import Path

# This checkout's package, whichever copy of it is installed (jobs run `python -m benchmark` from here too).
sys.path.insert(0, str(Path(workflow.basedir).parent))

from benchmark.code import cell_roots, code_files
from benchmark.config import ConfigError, validate
from benchmark.device import cuda_present
from benchmark.grid import Grid, remove_stale_markers, table_config
from benchmark.tracking import ledger_is_stale, tracking_uri

try:
    validate(config)  # fills the schema's defaults into `config`
    GRID = Grid(config)
except ConfigError as error:
    # One line, before any job starts; a traceback here would hide the key that is wrong.
    sys.exit(str(error))
if config["device"].startswith("cuda") and workflow.local_exec and not cuda_present():
    sys.exit(f"config error at 'device': {config['device']!r} but this machine has no NVIDIA GPU; use "
             "device: auto or cpu here, or run on a GPU machine or cluster")

# Every rule runs the package with the interpreter Snakemake itself runs under; DVC's stage commands
# say `python`, so the data rules put that interpreter's folder first on PATH.
PYTHON = sys.executable
PYTHON_BIN = os.path.dirname(sys.executable)
NAME = config["grid"]
STORE = f"results/tracking/{NAME}/store.json"
LEDGER = f"results/tracking/{NAME}.json"

# How jobs run, where that cannot change a result: formatted into the shell commands, not params, so
# that changing them reruns nothing (benchmark/grid.py keeps them out of the settings key).
DEVICE = config["device"]
CELLS_PER_GPU = config["cells_per_gpu"]
EVAL_BATCH_SIZE = config["eval_batch_size"]
TRACKING_ARG = f"--tracking {STORE}" if config["tracking"] else ""
TRAIN_GPUS = 1 if GRID.configurations and GRID.configurations[0].settings["device"] == "cuda" else 0

for record in remove_stale_markers(GRID):
    print(f"{record} is missing: its pack trains it again", file=sys.stderr)
if config["tracking"] and ledger_is_stale(Path(LEDGER), tracking_uri()):
    Path(LEDGER).unlink()
    print(f"the MLflow store {tracking_uri()} no longer holds grid {NAME}'s runs: they are logged again "
          "(nothing is retrained)", file=sys.stderr)


def check_tracking_store():
    """Check the store and create the grid's experiment before any job (onstart); stop with one line."""
    if not config["tracking"]:
        return
    result = subprocess.run([PYTHON, "-m", "benchmark", "tracking-init", "--grid", NAME, "--config-json",
                             json.dumps(table_config(config), sort_keys=True), "--out", STORE],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "tracking-init failed")


def all_targets():
    """What a grid run produces: every pack (so every cell), the tables and plots, the MLflow mirror."""
    targets = [*GRID.markers, *aggregate_outputs(), *([config["claim"]["out"]] if "claim" in config else [])]
    return targets + [LEDGER] if config["tracking"] else targets


def pack_spec(wildcards):
    return json.dumps(GRID.pack(wildcards).spec(), sort_keys=True)


def pack_code(wildcards):
    """The package files the pack's cells import (benchmark/code.py): editing one reruns exactly these cells."""
    return code_files(cell_roots(GRID.pack(wildcards).configuration.settings))


def pack_dependencies(wildcards):
    """What a pack's cells read besides the data: the class embeddings of a semantic method, the teacher's
    pack (its cells and their final weights) of a student."""
    pack = GRID.pack(wildcards)
    settings = pack.configuration.settings
    out = [settings["embeddings"]] if "embeddings" in settings else []
    out += [pack.teacher_marker] if pack.teacher is not None else []
    return out + ([pack.selection] if pack.selection is not None else [])


def reference_files():
    return [config["reference"]] if "reference" in config else []
