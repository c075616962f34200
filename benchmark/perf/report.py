"""summary.md from every <part>.json in the output folder, with the targets checked.

Files from elsewhere (e.g. throughput_cuda.json copied from a GPU machine) are included: a file's
part is its "part" field, else the registered part its name starts with. Unknown parts get a
generic table of their numbers. A part that failed shows its error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmark.io import write_atomic

# The default grid end to end before the speed work: 75 cells on 2 cores, measured with
# scripts/measure_quickstart.sh (setup excluded). The target is to be at least 2x faster.
BASELINE_DEFAULT_GRID_S = 257.0
DEFAULT_GRID_SPEEDUP = 2.0
FIXED_COST_S = 3.0
PAPER_DAG_S = 10.0
SYNTHETIC_DAG_S = 60.0
SYNTHETIC_CELLS = 10_000
AGGREGATION_S = 10.0
CPU_SPEEDUP = 1.5
CUDA_SPEEDUP = {"resnet110": 3.0, "resnet50": 1.5}
PAPER_GRIDS = ("paper", "paper_size")
PARTS = ("fixed_cost", "dag", "aggregation", "throughput", "packing", "default_grid")
PACKING_GAIN_CUDA = 4.0  # small cells per GPU-hour, packed against one cell per process
DASH = "—"


def seconds(value) -> str:
    return DASH if value is None else f"{value:.2f} s"


def number(value, fmt: str = "{:.2f}") -> str:
    return DASH if value is None else fmt.format(value)


def table(header: list[str], rows: Iterable[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
    return sorted(found, key=lambda item: (order.get(item[1], len(PARTS)), item[0]))


def result_of(data: dict) -> dict:
    """The part's own figures: under "result" in files the harness writes, the whole file otherwise."""
    return data.get("result", data) if isinstance(data.get("result", data), dict) else {}


def machine_line(data: dict) -> str:
    m = data.get("machine") or {}
    if not m:
        return "Machine: not recorded."
    return (f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')}, "
            f"Python {m.get('python', '?')}; load average {number(m.get('load_average_1min'))} at the start; "
            f"{m.get('date', '?')}; commit {m.get('git_commit') or 'unknown'}"
            + ("; quick mode" if data.get("quick") else "") + ".")


# ---- sections -------------------------------------------------------------------------------------

def fixed_cost_section(r: dict) -> str:
    modes = r.get("modes", {})
    rows = [[mode, seconds(m["wall"]["median_s"]), seconds(m["wall"]["min_s"]), seconds(m["process_to_first_step_s"])]
            for mode, m in modes.items()]
    warmup = " after one warm-up" if r.get("warmup", True) else ""
    text = (f"Cell: {r.get('cell', '?')}; {r.get('repeats', '?')} timed runs per mode{warmup}. "
            f"Preparing digits: {seconds(r.get('prepare_digits_s'))}; tracking-init: "
            f"{seconds(r.get('tracking_init_s'))}.\n\n")
    text += table(["mode", "whole process, median", "min", "process start to first step, median"], rows)
    imports = r.get("imports") or {}
    if imports:
        text += (f"\nImport costs: `python -c 'import X'` minus `python -c pass` "
                 f"({seconds(imports.get('python_startup_s'))}), median.\n\n")
        text += table(["import", "seconds"], [[f"`{mod}`", seconds(c["median_s"])]
                                              for mod, c in imports.get("modules", {}).items()])
        for module, top in (imports.get("top_imports") or {}).items():
            listed = ", ".join(f"{t['package']} {t['cumulative_s']:.2f} s" for t in top[:6])
            text += f"\nCostliest packages under `import {module}` (-X importtime, cumulative): {listed}.\n"
    return text


def dag_section(r: dict) -> str:
    rows = [[name, g.get("cells"), g.get("jobs"), seconds(g["dag"]["median_s"]), seconds(g["dag"]["min_s"]),
             len(g["dag"]["runs_s"]), seconds(g.get("with_job_stats_s"))]
            for name, g in r.get("grids", {}).items()]
    return (f"`{r.get('command', 'snakemake -n --quiet')}` in a scratch copy of the repository (nothing prepared).\n\n"
            + table(["grid", "cells", "jobs", "DAG build, median", "min", "runs", "with job statistics printed"],
                    rows))


def aggregation_section(r: dict) -> str:
    sub, steps = r.get("subprocess", {}), r.get("in_process", {})
    rows = [[r.get("cells"), seconds(sub.get("median_s")), seconds(sub.get("min_s")), seconds(steps.get("collect_s")),
             seconds(steps.get("summarise_s")), seconds(steps.get("write_tables_s")), seconds(steps.get("plots_s"))]]
    return ("`python -m benchmark aggregate --config <grid>` on synthetic metrics.json files (whole process), "
            "and its steps in one process.\n\n"
            + table(["cells", "whole process, median", "min", "collect", "summarise",
                     "write_tables (collects again)", "plots"], rows)
            + f"\nWriting the synthetic cells took {seconds(r.get('write_cells_s'))}. CLI: {r.get('cli_output', '')}\n")


def throughput_section(r: dict) -> str:
    cases = r.get("cases") or []
    if not cases:
        return f"Device {r.get('device', '?')}: no cases.\n"
    rows = [[c.get("name"), c.get("model"), "x".join(map(str, c.get("input") or [])), c.get("batch_size"),
             c.get("steps"), number(c.get("ours_images_per_s"), "{:.1f}"), number(c.get("reference_images_per_s"),
                                                                                    "{:.1f}"),
             number(c.get("speedup"), "{:.2f}x"), c.get("precision"), c.get("memory_format"),
             number(c.get("ours_tflops"), "{:.3f}"), number(c.get("peak_fraction"), "{:.1%}")] for c in cases]
    return (f"Training throughput on {r.get('device', '?')} ({r.get('torch_threads', '?')} torch threads): our "
            "training loop against the plain reference loop (benchmark/perf/reference_loop.py).\n\n"
            + table(["case", "model", "input", "batch", "steps", "ours img/s", "reference img/s", "speedup",
                     "precision", "memory format", "ours TFLOP/s", "of bf16 peak"], rows)
            + ablation_table(cases))


def ablation_table(cases: list[dict]) -> str:
    """Our loop with precision and layout set by hand: how much of the speedup each switch gives."""
    rows = [[c.get("name"), a.get("precision"), a.get("memory_format"), number(a.get("images_per_s"), "{:.1f}"),
             number(a.get("speedup"), "{:.2f}x")] for c in cases for a in c.get("ablation") or []]
    if not rows:
        return ""
    return ("\nOur loop with the precision and memory layout fixed by hand (speedup against the reference loop):\n\n"
            + table(["case", "precision", "memory format", "ours img/s", "speedup"], rows))


def packing_section(r: dict) -> str:
    rows = [[x.get("seeds_per_job"), x.get("processes"), seconds(x.get("wall_s")), x.get("cells_per_hour"),
             number(x.get("vs_one_per_process"), "{:.2f}x")] for x in r.get("layouts", [])]
    tracking = "with" if r.get("tracking") else "without"
    return (f"{r.get('cells')} cells {r.get('cell')} ({r.get('epochs')} epochs) through `python -m benchmark train`, "
            f"one process at a time, {tracking} MLflow, on {r.get('device', '?')}.\n\n"
            + table(["seeds per job", "processes", "wall", "cells per hour", "against one per process"], rows))


def default_grid_section(r: dict) -> str:
    rows = [[r.get("cells"), r.get("jobs"), seconds(r.get("wall_s")), seconds(r.get("baseline_s")),
             number(r.get("speedup"), "{:.2f}x"), seconds(r.get("noop_rerun_s"))]]
    return (f"`{r.get('command', 'snakemake')}` in a fresh copy of the repository.\n\n"
            + table(["cells", "jobs", "wall", "baseline", "speedup", "no-op rerun"], rows))


def flat_numbers(value, prefix: str = "") -> list[list]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in flat_numbers(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return []
    return [[prefix, value]]


def generic_section(r: dict) -> str:
    return table(["key", "value"], flat_numbers(r))


SECTIONS: dict[str, Callable[[dict], str]] = {
    "fixed_cost": fixed_cost_section, "dag": dag_section, "aggregation": aggregation_section,
    "throughput": throughput_section, "packing": packing_section, "default_grid": default_grid_section,
}


def section(stem: str, part: str, data: dict) -> str:
    text = f"## {stem}\n\n{machine_line(data)}"
    if data.get("elapsed_s") is not None:
        text += f" The part took {seconds(data['elapsed_s'])}."
    text += "\n\n"
    if data.get("error"):
        return text + f"**failed**: {data['error']}\n"
    try:
        return text + SECTIONS.get(part, generic_section)(result_of(data))
    except (KeyError, TypeError, AttributeError) as error:  # a file of another shape: show what it has
        return text + f"(unexpected layout: {error!r})\n\n" + generic_section(result_of(data))


# ---- targets --------------------------------------------------------------------------------------

def verdict(value, limit: float, at_least: bool = False) -> str:
    if value is None:
        return DASH
    return "PASS" if (value >= limit if at_least else value < limit) else "FAIL"


def first(results: list[tuple[str, str, dict]], part: str) -> dict | None:
    """The figures of `part`'s own file (<part>.json), else of the first file of that part; None if failed/absent."""
    candidates = [(stem, data) for stem, p, data in results if p == part and not data.get("error")]
    candidates.sort(key=lambda item: item[0] != part)
    return result_of(candidates[0][1]) if candidates else None


def is_cuda(device: str) -> bool:
    device = device.lower()
    return device.startswith("cuda") or "nvidia" in device or "gpu" in device


def cuda_need(case: dict) -> tuple[str, float] | None:
    """(label, required speedup) of a CUDA case with a target; None for cases without one."""
    text = f"{case.get('name', '')} {case.get('model', '')}".lower()
    if "resnet110" in text or "cifar" in text:
        return "cifar/resnet110", CUDA_SPEEDUP["resnet110"]
    if "resnet50" in text:
        return "resnet50", CUDA_SPEEDUP["resnet50"]
    return None


def throughput_targets(results: list[tuple[str, str, dict]]) -> list[list]:
    rows, seen = [], set()
    for stem, part, data in results:
        if part != "throughput" or data.get("error"):
            continue
        r = result_of(data)
        device = str(r.get("device", "cpu"))
        for case in r.get("cases") or []:
            label, need = ("CPU", CPU_SPEEDUP) if not is_cuda(device) else (cuda_need(case) or (None, None))
            if need is None:
                continue
            seen.add("CPU" if label == "CPU" else label)
            name = f"throughput {case.get('name')} on {device} ({stem}): speedup ≥ {need:g}x"
            rows.append([name, number(case.get("speedup"), "{:.2f}x"), verdict(case.get("speedup"), need, True)])
    for label, need in (("CPU", CPU_SPEEDUP), ("cifar/resnet110", CUDA_SPEEDUP["resnet110"]),
                        ("resnet50", CUDA_SPEEDUP["resnet50"])):
        if label not in seen:
            where = "CPU" if label == "CPU" else f"{label} on CUDA"
            rows.append([f"throughput {where}: speedup ≥ {need:g}x", "not measured", DASH])
    return rows


def fixed_cost_targets(r: dict | None) -> list[list]:
    name = f"fixed cost per job (process start to first step) < {FIXED_COST_S:g} s"
    if r is None:
        return [[name, "not measured", DASH]]
    rows = []
    for mode, m in r.get("modes", {}).items():
        first_step, wall = m.get("process_to_first_step_s"), m["wall"]["median_s"]
        if first_step is None:
            measured = f"not recorded (whole process {wall:.2f} s, an upper bound)"
            rows.append([f"{name}, {mode}", measured, "PASS" if wall < FIXED_COST_S else DASH])
            continue
        measured = f"{first_step:.2f} s"
        if first_step > wall:
            measured += f" (more than the whole process, {wall:.2f} s: the process-age clock is off)"
        rows.append([f"{name}, {mode}", measured, verdict(first_step, FIXED_COST_S)])
    return rows


def dag_targets(r: dict | None) -> list[list]:
    grids = (r or {}).get("grids", {})
    rows = []
    for name in PAPER_GRIDS:
        g = grids.get(name)
        value = g["dag"]["median_s"] if g else None
        rows.append([f"DAG build, {name} grid < {PAPER_DAG_S:g} s", seconds(value) if g else "not measured",
                     verdict(value, PAPER_DAG_S)])
    synthetic = [g for g in grids.values() if g.get("synthetic")]
    name = f"DAG build, synthetic {SYNTHETIC_CELLS:,}-cell grid < {SYNTHETIC_DAG_S:g} s"
    if not synthetic:
        rows.append([name, "not measured", DASH])
    for g in synthetic:
        value = g["dag"]["median_s"]
        if g.get("cells") == SYNTHETIC_CELLS:
            rows.append([name, seconds(value), verdict(value, SYNTHETIC_DAG_S)])
        else:
            rows.append([name, f"{seconds(value)} for {g.get('cells'):,} cells", DASH])
    return rows


def aggregation_targets(r: dict | None) -> list[list]:
    name = f"aggregation of {SYNTHETIC_CELLS:,} cells < {AGGREGATION_S:g} s"
    if r is None:
        return [[name, "not measured", DASH]]
    value = r["subprocess"]["median_s"]
    if r.get("cells") != SYNTHETIC_CELLS:
        return [[name, f"{seconds(value)} for {r.get('cells'):,} cells", DASH]]
    return [[name, seconds(value), verdict(value, AGGREGATION_S)]]


def default_grid_targets(r: dict | None) -> list[list]:
    name = f"default grid end to end ≥ {DEFAULT_GRID_SPEEDUP:g}x faster than {BASELINE_DEFAULT_GRID_S:g} s"
    if r is None:
        return [[name, "not measured", DASH]]
    wall = r["wall_s"]
    speedup = BASELINE_DEFAULT_GRID_S / wall
    if r.get("configfile"):
        return [[name, f"{wall:.1f} s for {r['configfile']} ({r.get('cells')} cells), not the default grid", DASH]]
    return [[name, f"{wall:.1f} s ({speedup:.2f}x)", verdict(speedup, DEFAULT_GRID_SPEEDUP, True)]]


def packing_targets(results: list[tuple[str, str, dict]]) -> list[list]:
    """The packing target is for GPUs; CPU figures are shown in their section without one."""
    rows = []
    for stem, part, data in results:
        r = result_of(data)
        if part != "packing" or data.get("error") or not is_cuda(str(r.get("device", "cpu"))):
            continue
        best = max((x.get("vs_one_per_process") or 0 for x in r.get("layouts", [])), default=None)
        rows.append([f"small cells per GPU-hour with packing ({stem}) ≥ {PACKING_GAIN_CUDA:g}x one per process",
                     number(best, "{:.2f}x"), verdict(best, PACKING_GAIN_CUDA, True)])
    return rows or [[f"small cells per GPU-hour with packing ≥ {PACKING_GAIN_CUDA:g}x one per process",
                     "not measured (no GPU)", DASH]]


def targets(results: list[tuple[str, str, dict]]) -> list[list]:
    rows = throughput_targets(results) + packing_targets(results)
    for part, check in (("fixed_cost", fixed_cost_targets), ("dag", dag_targets),
                        ("aggregation", aggregation_targets), ("default_grid", default_grid_targets)):
        try:
            rows += check(first(results, part))
        except (KeyError, TypeError) as error:
            rows.append([part, f"unexpected layout: {error!r}", DASH])
    return rows


def build_summary(out: Path) -> str:
    results = load_results(out)
    text = ("# Performance summary\n\nBuilt by `python -m benchmark.perf` from the result files in this folder "
            f"({', '.join(f'{stem}.json' for stem, _, _ in results) or 'none'}).\n\n## Targets\n\n")
    text += table(["target", "measured", "status"], targets(results))
    text += "\nPASS / FAIL against the target; — where it was not measured (or measured on another size).\n"
    for stem, part, data in results:
        text += "\n" + section(stem, part, data)
    return text


def write_summary(out: Path) -> Path:
    path = Path(out) / "summary.md"
    write_atomic(path, build_summary(out))
    return path
