"""DAG build time: Snakemake's dry run on the paper grids and a large synthetic grid, and the no-op rerun.

Two situations, each in its own scratch copy of the repository:

- Nothing there yet (no results, no prepared data): every job is to be run, so the whole DAG is built,
  data preparation and the computed code inputs of every pack included. `snakemake -n` is timed as a
  user types it (the default profile prints the job statistics, from which the job count comes), and
  bare `--quiet` (= quiet all), the DAG build alone: it skips printing the jobs, their reasons and the
  statistics, which at 10,000 cells costs as much as building the DAG itself. The synthetic grid is
  the default grid with more seeds, packed by 3 as the default grid packs, and one job per cell.
- Everything there (`noop`, config/paper.yaml by default): every output of the grid's DAG exists and is
  up to date, as after a finished run. Data receipts, cell records and pack markers are written as the
  workflow writes them (perf/records.py), the MLflow store and the grid's ledger for real
  (`tracking-init`), every other output as a placeholder, then `snakemake --touch --forceall` records
  Snakemake's metadata and puts the modification times in the DAG's order. Timed: `snakemake -n` and
  the real rerun `snakemake --cores 1`; both must say "Nothing to be done".

Wall and CPU seconds (user + system) are both reported: on a shared machine the wall time also counts
the waits for a core.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from pathlib import Path

from perf.common import PerfError, stats, synthetic_grid, timed, timed_cpu, tracking_init, write_yaml
from perf.records import write_markers, write_receipts, write_records
from perf.repo_copy import PYTHON, copy_repo, workflow_env

PAPER_GRIDS = ("paper", "paper_size")
NOOP_GRIDS = ("paper",)
FULL_SEEDS = 400  # 10,000 cells
QUICK_SEEDS = 40  # 1,000 cells
NOTHING_TO_DO = "Nothing to be done"


def load_grid(repo: Path, config_file: str):
    """The validated config and Grid of `config_file` as `snakemake --configfile` sees it in `repo`."""
    from benchmark.config import load_config
    from benchmark.grid import Grid

    with contextlib.chdir(repo):  # a config names its files (reference tables, selections) relative to the repository
        base = None if config_file == "config/config.yaml" else Path("config/config.yaml")
        config = load_config(Path(config_file), base=base)
        return config, Grid(config)


def snakemake(config_file: str, *args: str) -> list[str]:
    return [PYTHON, "-m", "snakemake", "--configfile", config_file, "--cores", "1", *args]


def job_count(output: str) -> int | None:
    """The `total` line of the job statistics a dry run printed."""
    found = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.MULTILINE)
    return int(found[-1]) if found else None


def timed_runs(repo: Path, cmd: list[str], repeats: int) -> tuple[dict, str]:
    """`repeats` runs of `cmd` in `repo`: wall statistics with the median CPU seconds, and the last output."""
    walls, cpus, output = [], [], ""
    for _ in range(repeats):
        wall, cpu, output = timed_cpu(cmd, repo, workflow_env(repo))
        walls.append(wall)
        cpus.append(cpu)
    return {**stats(walls), "cpu_median_s": sorted(cpus)[len(cpus) // 2]}, output


def measure(repo: Path, config_file: str, repeats: int) -> dict:
    """The dry run of a grid with nothing done: as typed (with the job statistics) and bare --quiet."""
    typed, output = timed_runs(repo, snakemake(config_file, "-n"), repeats)
    bare, _ = timed_runs(repo, snakemake(config_file, "-n", "--quiet"), repeats)
    _, grid = load_grid(repo, config_file)
    return {"config": config_file, "cells": len(grid.cells()), "jobs": job_count(output), "dry_run": typed,
            "dag": bare}


def summary_files(output: str) -> list[str]:
    """The output files of `snakemake --summary` (a header, then one tab-separated line per file)."""
    lines = [line.split("\t") for line in output.splitlines()]
    return [fields[0] for fields in lines if len(fields) >= 5 and fields[0] != "output_file"]


def summary_outputs(repo: Path, config_file: str) -> list[str]:
    """Every output file of the grid's DAG."""
    _, output = timed(snakemake(config_file, "--summary", "--quiet"), repo, workflow_env(repo))
    return summary_files(output)


def make_present(repo: Path, config_file: str) -> dict:
    """Make every output of the grid's DAG exist and be up to date (see the module docstring); what was written."""
    from benchmark.tracking import cell_name

    config, grid = load_grid(repo, config_file)
    write_receipts(config["datasets"], repo)
    records = write_records(grid, repo)
    markers = write_markers(grid, repo)
    if config["tracking"]:
        name = config["grid"]
        store = repo / "results" / "tracking" / name / "store.json"
        tracking_init(name, config, store, repo, workflow_env(repo))
        cells = {cell_name(c.coordinates(split, seed)): "perf" for c, split, seed in grid.cells()}
        ledger = {**json.loads(store.read_text()), "cells": cells}
        (repo / "results" / "tracking" / f"{name}.json").write_text(json.dumps(ledger, indent=2, sort_keys=True))
    outputs = summary_outputs(repo, config_file)
    placeholders = 0
    for name in outputs:
        path = repo / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            placeholders += 1
    timed(snakemake(config_file, "--touch", "--forceall", "--no-hooks"), repo, workflow_env(repo))
    return {"outputs": len(outputs), "records": records, "markers": markers, "placeholders": placeholders}


def noop(repo: Path, config_file: str, repeats: int) -> dict:
    """The no-op rerun of a grid whose outputs all exist: `snakemake -n` and the real `snakemake --cores 1`."""
    start = time.perf_counter()
    written = make_present(repo, config_file)
    setup_s = time.perf_counter() - start
    result = {"config": config_file, **written, "setup_s": setup_s}
    for label, args in (("dry_run", ("-n",)), ("rerun", ())):
        timing, output = timed_runs(repo, snakemake(config_file, *args), repeats)
        if NOTHING_TO_DO not in output:
            tail = " | ".join(output.strip().splitlines()[-4:])
            raise PerfError(f"the no-op {label} of {config_file} found work to do: {tail}")
        result[label] = timing
    return result


def run(quick: bool, seeds: int | None = None, paper: list[str] | None = None, noop_grids: list[str] | None = None,
        repeats: int | None = None, synthetic: bool = True) -> dict:
    """Dry-run the paper grids (`paper`; quick: paper only) and (`synthetic`) a 25 x `seeds`-cell synthetic digits
    grid with nothing done, then the no-op rerun of `noop_grids` with everything done."""
    seeds = seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
    paper = list(paper if paper is not None else PAPER_GRIDS[:1] if quick else PAPER_GRIDS)
    noop_grids = list(NOOP_GRIDS if noop_grids is None else noop_grids)
    repeats = repeats or (1 if quick else 3)
    grids, noops = {}, {}
    with tempfile.TemporaryDirectory(prefix="perf-dag-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        for name in paper:
            grids[name] = measure(repo, f"config/{name}.yaml", repeats)
        # as the default grid packs them (3 runs per job), and one job per cell: the most jobs
        for suffix, per_job in (("", None), ("_one_per_job", 1)) if synthetic else ():
            name = f"synthetic_{25 * seeds}{suffix}"
            config = synthetic_grid(seeds, grid=name)
            if per_job is not None:
                config["seeds_per_job"] = per_job
            write_yaml(repo / "config" / f"{name}.yaml", config)
            grids[name] = {**measure(repo, f"config/{name}.yaml", 1), "synthetic": True}
        for name in noop_grids:
            noops[name] = noop(copy_repo(Path(tmp) / f"noop_{name}"), f"config/{name}.yaml", repeats)
    return {"command": "snakemake --configfile <grid> --cores 1 -n [--quiet]", "grids": grids, "noop": noops}
