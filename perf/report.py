"""summary.md from every <part>.json in the output folder: the measured figures, one section per file.

The tables are pandas DataFrames written by `DataFrame.to_markdown` (tabulate). The summary reports
figures only: the targets they are read against are stated once, in docs/performance.md ("Targets").

Files from elsewhere (e.g. throughput_cuda.json copied from a GPU machine) are included: a file's
part is its "part" field, else the registered part its name starts with. Unknown parts get a
generic table of their numbers. A part that failed shows its error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmark.io import write_atomic
from perf import PARTS

DASH = "—"


def table(rows: list[dict]) -> str:
    """A Markdown table with a row per dict (its keys are the columns); None shows as a dash."""
    if not rows:
        return "(nothing recorded)\n"
    # object dtype keeps None as None (a float column would print it as nan) and ints as ints
    return pd.DataFrame(rows, dtype=object).to_markdown(index=False, missingval=DASH) + "\n"


def r(value, digits: int = 2):
    """`value` rounded for the tables; None and non-numbers pass through."""
    return round(value, digits) if isinstance(value, int | float) and not isinstance(value, bool) else value


def part_of(stem: str, data: dict) -> str:
    """The part a result file belongs to: its "part" field, else the longest part name its file name starts with."""
    if data.get("part"):
        return data["part"]
    matches = [p for p in PARTS if stem == p or stem.startswith(p + "_")]
    return max(matches, key=len) if matches else stem


def load_results(out: Path) -> list[tuple[str, str, dict]]:
    """(file stem, part, content) of every *.json in `out`, registered parts first in their order."""
    found = []
    for path in sorted(Path(out).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            data = {"error": f"unreadable result file: {error}"}
        if not isinstance(data, dict):
            data = {"error": "result file is not a JSON object"}
        found.append((path.stem, part_of(path.stem, data), data))
    order = {p: i for i, p in enumerate(PARTS)}
    return sorted(found, key=lambda item: (order.get(item[1], len(order)), item[0]))


def result_of(data: dict) -> dict:
    """The part's own figures: under "result" in files the harness writes, the whole file otherwise."""
    result = data.get("result", data)
    return result if isinstance(result, dict) else {}


def machine_line(data: dict) -> str:
    m = data.get("machine") or {}
    if not m:
        return "Machine: not recorded."
    return (f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')}, "
            f"Python {m.get('python', '?')}; load average {r(m.get('load_average_1min'))} at the start; "
            f"{m.get('date', '?')}; commit {m.get('git_commit') or 'unknown'}"
            + ("; quick mode" if data.get("quick") else "") + ".")


# ---- one section per part -------------------------------------------------------------------------

def fixed_cost_section(res: dict) -> str:
    rows = [{"mode": mode, "whole process, median (s)": r(m["wall"]["median_s"]), "min (s)": r(m["wall"]["min_s"]),
             "process start to first step, median (s)": r(m.get("process_to_first_step_s"))}
            for mode, m in res.get("modes", {}).items()]
    warmup = " after one warm-up" if res.get("warmup", True) else ""
    text = (f"Cell: {res.get('cell', '?')}; {res.get('repeats', '?')} timed runs per mode{warmup}. "
            f"Preparing digits: {r(res.get('prepare_digits_s'))} s; tracking-init: {r(res.get('tracking_init_s'))} s."
            "\n\n" + table(rows))
    imports = res.get("imports") or {}
    if imports:
        text += (f"\nImport costs: `python -c 'import X'` minus `python -c pass` "
                 f"({r(imports.get('python_startup_s'))} s), median.\n\n")
        text += table([{"import": f"`{module}`", "seconds": r(cost["median_s"])}
                       for module, cost in imports.get("modules", {}).items()])
        for module, top in (imports.get("top_imports") or {}).items():
            listed = ", ".join(f"{t['package']} {t['cumulative_s']:.2f} s" for t in top[:6])
            text += f"\nCostliest packages under `import {module}` (-X importtime, cumulative): {listed}.\n"
    return text


def dag_section(res: dict) -> str:
    rows = [{"grid": name, "cells": g.get("cells"), "jobs": g.get("jobs"),
             "`-n`, median (s)": r((g.get("dry_run") or {}).get("median_s")),
             "`-n` CPU (s)": r((g.get("dry_run") or {}).get("cpu_median_s")),
             "DAG build (`-n --quiet`), median (s)": r(g["dag"]["median_s"]), "min (s)": r(g["dag"]["min_s"]),
             "runs": len(g["dag"]["runs_s"])}
            for name, g in res.get("grids", {}).items()]
    text = (f"`{res.get('command', 'snakemake -n --quiet')}` in a scratch copy of the repository (nothing prepared, "
            "every job to run).\n\n" + table(rows))
    noops = [{"grid": name, "outputs present": n.get("outputs"), "`-n`, median (s)": r(n["dry_run"]["median_s"]),
              "`-n` CPU (s)": r(n["dry_run"].get("cpu_median_s")), "rerun, median (s)": r(n["rerun"]["median_s"]),
              "rerun CPU (s)": r(n["rerun"].get("cpu_median_s")), "runs": len(n["rerun"]["runs_s"])}
             for name, n in (res.get("noop") or {}).items()]
    if noops:
        text += ("\nNo-op rerun with every output of the grid present and up to date (both said \"Nothing to be "
                 "done\"): `snakemake -n` and the real `snakemake --cores 1`.\n\n" + table(noops))
    return text


def aggregation_section(res: dict) -> str:
    sub, steps = res.get("subprocess", {}), res.get("in_process", {})
    rows = [{"cells": res.get("cells"), "whole process, median (s)": r(sub.get("median_s")),
             "min (s)": r(sub.get("min_s")), "in process (s)": r(steps.get("aggregate_s")),
             "collect (s)": r(steps.get("collect_s")), "summarise (s)": r(steps.get("summarise_s")),
             "write_tables (s)": r(steps.get("write_tables_s")),
             "accuracy plots (s)": r(steps.get("plot_dataset_s")),
             "training-curve plots (s)": r(steps.get("plot_training_curves_s"))}]
    statuses = ", ".join(f"{k} {v}" for k, v in (steps.get("statuses") or {}).items())
    return ("`python -m benchmark aggregate --config-json <grid>` on synthetic records (whole process), "
            "and benchmark.aggregate.aggregate in one process with its steps timed.\n\n" + table(rows)
            + f"\nWriting the synthetic cells took {r(res.get('write_cells_s'))} s. Cells read: {statuses or '?'}. "
            f"CLI: {res.get('cli_output', '')}\n")


def throughput_section(res: dict) -> str:
    cases = res.get("cases") or []
    rows = [{"case": c.get("name"), "model": c.get("model"), "input": "x".join(map(str, c.get("input") or [])),
             "batch": c.get("batch_size"), "steps": c.get("steps"), "ours img/s": r(c.get("ours_images_per_s"), 1),
             "reference img/s": r(c.get("reference_images_per_s"), 1), "speedup": r(c.get("speedup")),
             "precision": c.get("precision"), "memory format": c.get("memory_format"),
             "ours TFLOP/s": r(c.get("ours_tflops"), 3), "of bf16 peak": r(c.get("peak_fraction"), 3)}
            for c in cases]
    text = (f"Training throughput on {res.get('device', '?')} ({res.get('torch_threads', '?')} torch threads): our "
            "training loop against the plain reference loop (perf/reference_loop.py).\n\n" + table(rows))
    ablation = [{"case": c.get("name"), "precision": a.get("precision"), "memory format": a.get("memory_format"),
                 "ours img/s": r(a.get("images_per_s"), 1), "speedup": r(a.get("speedup"))}
                for c in cases for a in c.get("ablation") or []]
    if ablation:
        text += ("\nOur loop with the precision and memory layout fixed by hand (speedup against the reference loop):"
                 "\n\n" + table(ablation))
    return text


def packing_section(res: dict) -> str:
    rows = [{"seeds per job": x.get("seeds_per_job"), "processes": x.get("processes"),
             "cells written": x.get("cells_written"), "wall (s)": r(x.get("wall_s")),
             "cells per hour": x.get("cells_per_hour"), "against one per process": r(x.get("vs_one_per_process"))}
            for x in res.get("layouts", [])]
    tracking = "with" if res.get("tracking") else "without"
    return (f"{res.get('cells')} cells {res.get('cell')} ({res.get('epochs')} epochs) through "
            f"`python -m benchmark train`, one process at a time, {tracking} MLflow, on {res.get('device', '?')}.\n\n"
            + table(rows))


def default_grid_section(res: dict) -> str:
    rows = [{"cells": res.get("cells"), "jobs": res.get("jobs"), "wall (s)": r(res.get("wall_s"), 1),
             "no-op rerun (s)": r(res.get("noop_rerun_s")),
             "rerun had nothing to do": res.get("noop_rerun_nothing_to_do")}]
    grid = res.get("configfile") or "the default grid"
    return f"`{res.get('command', 'snakemake')}` on {grid} in a fresh copy of the repository.\n\n" + table(rows)


MODE_ORDER = {"off": 0, "flush_default": 1, "flush_0": 2}  # the JSON files sort their keys


def tracking_section(res: dict) -> str:
    rows = [{"mode": mode, "flush (s)": r(m.get("flush_s")), "epochs": m.get("epochs"),
             "epoch, median (s)": r(m.get("epoch_s_median"), 3),
             "tracker per epoch, mean (ms)": r(m.get("tracker_epoch_ms_mean"), 3),
             "of an epoch (%)": r(100 * m["per_epoch_fraction"], 3), "flushes": m.get("flushes"),
             "run start per cell (s)": ", ".join(str(r(x)) for x in m.get("run_start_s", [])),
             "with start and finish (%)": r(100 * m["with_start_and_finish_fraction"], 1),
             "epoch time against off": r(m.get("epoch_s_vs_off")), "train_s against off": r(m.get("train_s_vs_off"))}
            for mode, m in sorted(res.get("modes", {}).items(), key=lambda item: MODE_ORDER.get(item[0], 99))]
    return (f"A pack of {res.get('cells')} cells {res.get('cell')} ({res.get('epochs_per_cell')} epochs each) through "
            "the train verb, CellTracker's calls timed from outside; the epoch time excludes the tracker.\n\n"
            + table(rows))


def flat_numbers(value, prefix: str = "") -> list[dict]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in flat_numbers(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return []
    return [{"key": prefix, "value": value}]


def generic_section(res: dict) -> str:
    return table(flat_numbers(res))


SECTIONS: dict[str, Callable[[dict], str]] = {
    "fixed_cost": fixed_cost_section, "dag": dag_section, "aggregation": aggregation_section,
    "throughput": throughput_section, "packing": packing_section, "default_grid": default_grid_section,
    "tracking": tracking_section,
}


def section(stem: str, part: str, data: dict) -> str:
    text = f"## {stem}\n\n{machine_line(data)}"
    if data.get("elapsed_s") is not None:
        text += f" The part took {r(data['elapsed_s'])} s."
    text += "\n\n"
    if data.get("error"):
        return text + f"**failed**: {data['error']}\n"
    try:
        return text + SECTIONS.get(part, generic_section)(result_of(data))
    except (KeyError, TypeError, AttributeError) as error:  # a file of another shape: show what it has
        return text + f"(unexpected layout: {error!r})\n\n" + generic_section(result_of(data))


def build_summary(out: Path) -> str:
    results = load_results(out)
    files = ", ".join(f"{stem}.json" for stem, _, _ in results) or "none"
    text = (f"# Performance summary\n\nBuilt by `python -m perf` from the result files in this folder ({files}). "
            "The targets these figures are read against are in docs/performance.md (section Targets).\n")
    for stem, part, data in results:
        text += "\n" + section(stem, part, data)
    return text


def write_summary(out: Path) -> Path:
    path = Path(out) / "summary.md"
    write_atomic(path, build_summary(out))
    return path
