"""DAG build time: `snakemake -n --quiet` on the paper grids and a large synthetic grid.

Runs in a scratch copy of the repository (no results, no prepared data: every job is to be run, so
the whole DAG is built, data preparation included). Bare `--quiet` (= quiet all) is the fastest
dry run that still builds the whole DAG: it only skips printing the jobs, their reasons and the job
statistics, which at 10,000 cells costs as much as building the DAG itself. The job count comes
from one extra, separately timed dry run with `--quiet rules`, which prints the job statistics.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml

from perf.common import stats, synthetic_grid, timed, write_yaml
from perf.repo_copy import PYTHON, REPO, copy_repo, workflow_env

PAPER_GRIDS = ("paper", "paper_size")
FULL_SEEDS = 400  # 10,000 cells
QUICK_SEEDS = 40  # 1,000 cells


def merged(base: dict, override: dict) -> dict:
    """`override` over `base` as Snakemake merges --configfile: mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def count_cells(config_file: Path) -> int:
    from benchmark.config import cells

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return len(cells(merged(default, yaml.safe_load(config_file.read_text()))))


def dry_run(repo: Path, config_file: str, quiet: str | None = None) -> tuple[float, str]:
    cmd = [PYTHON, "-m", "snakemake", "--configfile", config_file, "--cores", "1", "-n", "--quiet"]
    return timed(cmd + ([quiet] if quiet else []), repo, workflow_env(repo))


def job_count(output: str) -> int | None:
    """The `total` line of the job statistics a dry run printed."""
    found = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.MULTILINE)
    return int(found[-1]) if found else None


def measure(repo: Path, config_file: str, repeats: int) -> dict:
    stats_s, output = dry_run(repo, config_file, quiet="rules")  # also warms the caches for the timed runs
    walls = [dry_run(repo, config_file)[0] for _ in range(repeats)]
    return {"config": config_file, "cells": count_cells(repo / config_file), "jobs": job_count(output),
            "dag": stats(walls), "with_job_stats_s": stats_s}


def run(quick: bool, seeds: int | None = None, paper: list[str] | None = None, repeats: int | None = None) -> dict:
    """Dry-run the paper grids (`paper`; quick: paper only) and a 25 x `seeds`-cell synthetic digits grid."""
    seeds = seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
    paper = list(paper if paper is not None else PAPER_GRIDS[:1] if quick else PAPER_GRIDS)
    repeats = repeats or (1 if quick else 3)
    grids = {}
    with tempfile.TemporaryDirectory(prefix="perf-dag-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        for name in paper:
            grids[name] = measure(repo, f"config/{name}.yaml", repeats)
        # as the default grid packs them (3 seeds per job), and one job per cell: the most jobs
        for suffix, per_job in (("", None), ("_one_per_job", 1)):
            synthetic = f"synthetic_{25 * seeds}{suffix}"
            config = synthetic_grid(seeds, grid=synthetic)
            if per_job is not None:
                config["seeds_per_job"] = per_job
            write_yaml(repo / "config" / f"{synthetic}.yaml", config)
            grids[synthetic] = {**measure(repo, f"config/{synthetic}.yaml", 1), "synthetic": True}
    return {"command": "snakemake --configfile <grid> --cores 1 -n --quiet", "grids": grids}
