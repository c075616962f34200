# Config validation, grid expansion and the small helpers the rules read their params from.
import json
import os
import sys
from pathlib import Path

from benchmark.config import ConfigError, cell_dir, cell_settings, cells, hierarchy_path, seed_groups, validate
from benchmark.device import cuda_requested
from benchmark.losses import LOSSES, split_label
from benchmark.models import MODELS
from benchmark.registry import source_file

try:
    validate(config)
except ConfigError as error:
    # One line, before any job starts; a traceback here would hide the key that is wrong.
    sys.exit(str(error))

# Every rule runs the package with the interpreter Snakemake itself runs under; DVC's stage
# commands say `python`, so the data rule puts that interpreter's folder first on PATH.
PYTHON = sys.executable
PYTHON_BIN = os.path.dirname(sys.executable)
GRID = config["grid"]
TRACKING = f"results/tracking/{GRID}.json"
# Code every cell depends on; a loss's or model's own file is added per cell (touching a loss's
# file reruns only that loss's cells).
CORE_CODE = [
    f"benchmark/{name}.py"
    for name in ("train/__init__", "train/build", "train/data", "train/loop", "train/record", "methods/__init__",
                 "methods/base", "runtime", "optim", "evaluate", "augment", "schedules", "validation",
                 "data/subsets", "data/prepared", "packs", "checkpoint")
]


def cell_path(dataset, method, spc, seed):
    return f"{cell_dir(dataset, method, spc, seed)}/metrics.json"


def all_cells():
    return [cell_path(*cell) for cell in cells(config)]


def all_outputs():
    return [f"results/tables/{GRID}.md"]


def cell_outputs(seeds):
    """The metrics.json files of a training job: one cell ({seed} a wildcard), or the cells of `seeds`."""
    pattern = "results/cells/{{dataset}}/{{method}}/spc{{spc}}/seed{seed}/metrics.json"
    return pattern.format(seed="{seed}") if seeds is None else [pattern.format(seed=s) for s in seeds]


def cell_log(seeds):
    name = "{seed}" if seeds is None else "_".join(map(str, seeds))
    return f"logs/cells/{{dataset}}/{{method}}/spc{{spc}}/seed{name}.log"


def cell_code(wildcards):
    settings = cell_settings(config, wildcards.dataset, wildcards.method)
    method = split_label(wildcards.method)[0]
    return [*CORE_CODE, source_file(LOSSES, method), source_file(MODELS, settings["model"])]


def cell_embeddings(wildcards):
    """The cached class embeddings a semantic cell trains with (none for other losses)."""
    settings = cell_settings(config, wildcards.dataset, wildcards.method)
    return [settings["embeddings"]] if "embeddings" in settings else []


def embedding_class_ids(wildcards):
    return config["dataset_settings"][wildcards.dataset]["class_ids"]


def reference_files():
    return [config["reference"]] if "reference" in config else []


def cell_settings_json(wildcards):
    return json.dumps(cell_settings(config, wildcards.dataset, wildcards.method), sort_keys=True)
