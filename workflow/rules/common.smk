# Config validation, the grid's packs, fail-fast checks and the small helpers the rules read.
import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

# This checkout's package, whichever copy of it is installed (jobs run `python -m benchmark` from here too).
sys.path.insert(0, str(Path(workflow.basedir).parent))

from benchmark.code import cell_roots, code_manifest
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

NAME = config["grid"]
STORE = f"results/tracking/{NAME}/store.json"
LEDGER = f"results/tracking/{NAME}.json"

TRAIN_GPUS = 1 if GRID.configurations and GRID.configurations[0].settings["device"] == "cuda" else 0
# The config the tables, the MLflow mirror, the claim and the report read (without the settings that
# cannot change them): written by the rule grid_config, rewritten when it changes (its hash is that
# rule's param), an input of those rules.
TABLE_CONFIG = json.dumps(table_config(config), sort_keys=True)
TABLE_CONFIG_SHA256 = hashlib.sha256(TABLE_CONFIG.encode()).hexdigest()[:16]
GRID_CONFIG = f"results/grids/{NAME}.json"
# Every job's shell starts with this (a cluster job's Snakemake sets it again on its node):
# - PATH: `python` (the rules' `python -m benchmark ...`, and DVC's stage commands) is the interpreter
#   Snakemake runs under, so jobs find this project's environment without activating it; with
#   `--sdm conda` the rules' conda environment (environment.yml) is activated after this and comes first;
# - BENCHMARK_RUN: how the train and select jobs run, where that cannot change a result (the device,
#   cells per GPU, the evaluation batch, the grid and its MLflow store): not params, so that changing
#   it reruns nothing (benchmark/grid.py keeps it out of the settings key);
# - BENCHMARK_GRID_CONFIG: what grid_config writes.
RUN_OPTIONS = json.dumps({"device": config["device"], "cells_per_gpu": config["cells_per_gpu"],
                          "eval_batch_size": config["eval_batch_size"], "grid": NAME,
                          "tracking": STORE if config["tracking"] else None})
PREFIX = (f"set -euo pipefail; export PATH={shlex.quote(os.path.dirname(sys.executable))}:\"$PATH\" "
          f"BENCHMARK_RUN={shlex.quote(RUN_OPTIONS)} BENCHMARK_GRID_CONFIG={shlex.quote(TABLE_CONFIG)}; ")
shell.prefix(PREFIX.replace("{", "{{").replace("}", "}}"))  # Snakemake formats the prefix as it does commands

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
    result = subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", NAME, "--config-json",
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


@functools.cache
def _manifest(roots: tuple[str, ...]) -> str:
    return code_manifest(roots)


def code_input(roots) -> str:
    """The manifest standing for the package files `roots` import (benchmark/code.py): editing one of them
    reruns exactly the jobs that import it."""
    return _manifest(tuple(sorted(set(roots))))


def pack_code(wildcards):
    """The pack's cells' code: editing a file they import reruns exactly these cells."""
    return code_input(cell_roots(GRID.pack(wildcards).configuration.settings))


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



def receipt_inputs(paths):
    """Prepared folders an upstream stage writes -> the receipts of the rule that prepares them."""
    return [f"{path}.json" for path in paths]


def tuning_inputs(wildcards):
    """The trials' packs a selection waits for (none with successive halving: its job trains them)."""
    tuning = GRID.tuning(wildcards)
    return GRID.trial_markers.get(tuning.selection, [])


def aggregate_outputs():
    return [str(p) for group in AGGREGATE.values() for p in group]


RUN_STARTED = time.time()


def print_failed_logs():
    """onerror: the error line of every job log this run wrote that ends in an error, with its path.

    The profile's `quiet: [rules]` also silences `--show-failed-logs`, so without this a failed job
    shows only its command; our verbs end a failure with one line that names the thing and the fix.
    """
    shown = 0
    for root in ("logs", "results"):
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder, name)
                if name.endswith(".log") and path.stat().st_mtime >= RUN_STARTED and shown < 20:
                    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
                    ours = [line for line in lines if re.match(r"([a-z]+ )?error: ", line)]  # "data error: ..."
                    last = ours[-1] if ours else lines[-1] if lines else ""
                    if "error" in last.lower():
                        print(f"{path}: {last}", file=sys.stderr)
                        shown += 1
