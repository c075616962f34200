"""The default grid end to end: `snakemake --cores 2` in a fresh copy of the repository.

As the README's quick start (without the venv setup): data preparation through DVC, the MLflow
store, every pack of cells, the tables, plots, report page and the MLflow mirror (workflow/Snakefile
with its default profile). Then the rerun that has nothing to do. The baseline it
is compared with (measured before the speed work) and the target are in docs/performance.md.
Takes minutes; run it only when named (`--parts default_grid`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from perf.common import timed
from perf.dag import load_grid
from perf.repo_copy import PYTHON, copy_repo, workflow_env


def steps_done(output: str) -> int | None:
    """The total of Snakemake's last "N of M steps (100%) done" line."""
    found = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    return int(found[-1][1]) if found else None


def run(quick: bool, cores: int = 2, configfile: str | None = None) -> dict:
    """Run the default grid (or `configfile`, relative to the repository), then the no-op rerun.

    `quick` changes nothing: the grid is the measurement.
    """
    extra = ["--configfile", configfile] if configfile else []
    cmd = [PYTHON, "-m", "snakemake", "--cores", str(cores), *extra]
    with tempfile.TemporaryDirectory(prefix="perf-default-grid-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        env = workflow_env(repo)
        wall, output = timed(cmd, repo, env)
        rerun, rerun_output = timed(cmd, repo, env)
        cells = len(list((repo / "results" / "cells").rglob("metrics.json")))
        _, grid = load_grid(repo, configfile or "config/config.yaml")
    return {
        "command": " ".join(["snakemake", *cmd[3:]]),
        "cores": cores,
        "configfile": configfile,  # None: the default grid, the one the baseline is for
        "cells": cells,  # records written, to compare with the grid's cells
        "grid_cells": len(grid.cells()),
        "jobs": steps_done(output),
        "wall_s": wall,
        "noop_rerun_s": rerun,
        "noop_rerun_nothing_to_do": "Nothing to be done" in rerun_output,
    }
