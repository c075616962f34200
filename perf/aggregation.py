"""Aggregation of a large grid: tables and plots from 10,000 synthetic cells.

Every cell of the synthetic grid (the default grid with more seeds) gets a record in the workflow's
layout (results/cells/<dataset>/<method>/spc<n>/<key>/split<k>/seed<s>/metrics.json) with the keys a
trained cell's record has and the identity the aggregate checks (perf/records.py), beside a data
receipt, so reading and checking them costs what it costs on real results. The real CLI is timed as a
whole process, as the workflow's aggregate rule runs it (`python -m benchmark aggregate --config-json
<the grid's table config>`); then benchmark.aggregate.aggregate itself in this process, with its steps
(collect, summarise, write_tables, the plots) timed from outside. The files go to a tmpfs where there
is one (common.scratch_root): deleting 10,000 files from this disk takes longer than the measurement.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from perf.common import scratch_root, stats, synthetic_grid, timed, timed_calls
from perf.records import write_receipts, write_records
from perf.repo_copy import PYTHON

FULL_SEEDS = 400  # 5 methods x 5 samples-per-class values x 400 seeds = 10,000 cells
QUICK_SEEDS = 40  # 1,000 cells


def in_process(config: dict, root: Path) -> dict:
    """Seconds of benchmark.aggregate.aggregate in this process, and of its steps (timed from outside)."""
    import benchmark.aggregate
    import benchmark.plots
    import benchmark.tables
    from benchmark.aggregate import aggregate

    steps = [(benchmark.aggregate, "collect"), (benchmark.tables, "summarise"), (benchmark.tables, "write_tables"),
             (benchmark.plots, "plot_dataset"), (benchmark.plots, "plot_training_curves")]
    start = time.perf_counter()
    with timed_calls(steps) as calls:
        written = aggregate(config, root / "inproc" / "tables", root / "inproc" / "plots", root)
    total = time.perf_counter() - start
    frame, _ = benchmark.aggregate.collect(config, root)  # once more, untimed: every cell was read as a result
    return {"aggregate_s": total, **{f"{name}_s": sum(seconds) for name, seconds in calls.items()},
            "files": len(written), "statuses": frame["status"].value_counts().to_dict()}


def run(quick: bool, seeds: int | None = None, repeats: int | None = None) -> dict:
    """Time the aggregation of a synthetic grid of 25 x `seeds` cells (default 10,000; 1,000 when quick)."""
    from benchmark.config import validate
    from benchmark.grid import Grid, table_config

    seeds = seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
    repeats = repeats or (1 if quick else 3)
    config = validate(synthetic_grid(seeds))
    with tempfile.TemporaryDirectory(prefix="perf-aggregation-", dir=scratch_root()) as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_receipts(config["datasets"], root)
        count = write_records(Grid(config), root)
        write_s = time.perf_counter() - start
        cmd = [PYTHON, "-m", "benchmark", "aggregate", "--config-json", json.dumps(table_config(config),
                                                                                   sort_keys=True)]
        walls, output = [], ""
        for _ in range(repeats):
            seconds, output = timed(cmd, root)
            walls.append(seconds)
        found = len(list((root / "results" / "cells").rglob("metrics.json")))
        outputs = sorted(str(p.relative_to(root)) for p in (root / "results").glob("[tp]*/*") if p.is_file())
        steps = in_process(config, root)
    return {
        "cells": count,
        "scratch": str(Path(tmp).parent),
        "metrics_files": found,
        "write_cells_s": write_s,
        "subprocess": stats(walls),
        "in_process": steps,
        "outputs": outputs,
        "cli_output": output.strip().splitlines()[-1] if output.strip() else "",
    }
