"""The speed harness's command line and summary (python -m perf): real runs of the cheap parts on tiny
sizes, the summary's tables from hand-written result files, one clear line per failed part, and the
harness kept out of the product package. No assertion on how fast anything is: the figures are the
harness's output, not a test's.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from perf import PARTS
from perf import __main__ as cli
from perf.report import build_summary

REPO = Path(__file__).resolve().parents[2]
TINY = [  # each part as small as it goes: 50-cell grids, one run of each thing; the dag's no-op rerun on the
    # default grid (75 cells, one dataset: its setup takes half the time of paper.yaml's, through the same code)
    "fixed_cost.repeats=1", "fixed_cost.import_runs=1", "fixed_cost.warmup=false",
    'fixed_cost.modules=["benchmark.tracking"]',
    "dag.seeds=2", 'dag.paper=["paper"]', 'dag.noop_grids=["config"]',
    "aggregation.seeds=2",
]


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def tables(summary: str, stem: str) -> list[list[dict[str, str]]]:
    """The Markdown tables of section `## stem`, each as a list of {column: cell text} rows."""
    text = summary.split(f"\n## {stem}\n", 1)[1].split("\n## ", 1)[0]
    found, lines = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif lines:
            header, _rule, *rows = lines
            found.append([dict(zip(header, row, strict=True)) for row in rows])
            lines = []
    return found


def stems_in_order(summary: str) -> list[str]:
    return [line[3:] for line in summary.splitlines() if line.startswith("## ")]


@pytest.mark.slow
def test_cheap_parts_for_real(tmp_path):
    out = tmp_path / "perf"
    args = [a for item in TINY for a in ("--set", item)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # run from elsewhere: nothing may land in the working folder
    result = subprocess.run([sys.executable, "-m", "perf", "--parts", "fixed_cost,dag,aggregation",
                             "--out", str(out), "--quick", *args], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perf"]
    assert sorted(p.name for p in out.iterdir()) == ["aggregation.json", "dag.json", "fixed_cost.json", "summary.md"]

    records = {name: json.loads((out / f"{name}.json").read_text()) for name in ("fixed_cost", "dag", "aggregation")}
    for name, record in records.items():
        assert record["part"] == name and record["quick"] is True and "error" not in record
        assert record["machine"]["cores"] == os.cpu_count() and record["machine"]["cpu"]
        assert record["machine"]["torch"] and record["machine"]["python"]

    fixed = records["fixed_cost"]["result"]
    assert set(fixed["modes"]) == {"no_tracking", "tracking"}
    for mode in fixed["modes"].values():
        assert len(mode["wall"]["runs_s"]) == 1
        assert mode["last_timing"] is not None  # the train CLI really trained and wrote its metrics.json
    assert set(fixed["imports"]["modules"]) == {"benchmark.tracking"}
    assert fixed["imports"]["top_imports"]["benchmark.tracking"]  # -X importtime's lines were read

    grids = records["dag"]["result"]["grids"]
    assert set(grids) == {"paper", "synthetic_50", "synthetic_50_one_per_job"}
    assert (grids["paper"]["cells"], grids["synthetic_50"]["cells"]) == (120, 50)
    # 50 cells = 25 (dataset, method, spc) x 2 seeds: one pack each, or a job per cell, plus 6 other jobs
    # (prepare_data, grid_config, aggregate, report_config, track, all)
    assert (grids["synthetic_50"]["jobs"], grids["synthetic_50_one_per_job"]["jobs"]) == (31, 56)
    # the no-op rerun of the default grid: every output present (the part fails unless both said nothing to do)
    noop = records["dag"]["result"]["noop"]["config"]
    assert (noop["records"], noop["markers"]) == (75, 25) and noop["outputs"] > 25  # packs of 3 seeds; the tables too
    assert len(noop["dry_run"]["runs_s"]) == len(noop["rerun"]["runs_s"]) == 1

    agg = records["aggregation"]["result"]
    assert agg["cells"] == agg["metrics_files"] == sum(agg["in_process"]["statuses"].values()) == 50
    assert "missing" not in agg["in_process"]["statuses"]  # every record was accepted as its cell's result
    assert "results/tables/perf_synthetic.md" in agg["outputs"]
    assert agg["cli_output"].startswith("grid 'perf_synthetic': 18 tables and plots")
    assert agg["in_process"]["files"] == 18 and agg["in_process"]["plot_training_curves_s"] > 0

    summary = (out / "summary.md").read_text()
    assert stems_in_order(summary) == ["fixed_cost", "dag", "aggregation"]
    dag, noops = tables(summary, "dag")
    assert [(row["grid"], row["cells"], row["jobs"]) for row in dag] == [
        ("paper", "120", str(grids["paper"]["jobs"])), ("synthetic_50", "50", "31"),
        ("synthetic_50_one_per_job", "50", "56")]
    assert [row["grid"] for row in noops] == ["config"]
    modes, imports = tables(summary, "fixed_cost")
    assert [row["mode"] for row in modes] == ["no_tracking", "tracking"]
    assert [row["import"] for row in imports] == ["`benchmark.tracking`"]
    assert tables(summary, "aggregation")[0][0]["cells"] == "50"


def _add_part(tmp_path: Path, monkeypatch, name: str, module: str, body: str | None) -> None:
    if body is not None:
        (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.PARTS, name, module)


def test_failed_parts_give_one_line_and_the_others_run(tmp_path, monkeypatch, capsys):
    _add_part(tmp_path, monkeypatch, "broken", "fake_perf_broken",
              "def run(quick, size=1):\n    raise ValueError('disk on fire\\nsecond line')\n")
    _add_part(tmp_path, monkeypatch, "absent", "perf.no_such_part", None)
    _add_part(tmp_path, monkeypatch, "fine", "fake_perf_ok",
              "def run(quick, size=1):\n    return {'size': size, 'quick': quick}\n")
    monkeypatch.setattr(cli, "git_commit", lambda: "abc123")
    out = tmp_path / "out"
    code = cli.main(["--parts", "broken,absent,fine", "--out", str(out), "--set", "fine.size=7"])
    assert code == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["perf: part broken failed: ValueError: disk on fire",
                      "perf: part absent failed: ModuleNotFoundError: No module named 'perf.no_such_part'"]
    broken = json.loads((out / "broken.json").read_text())
    assert broken["error"] == "ValueError: disk on fire" and "Traceback" in broken["traceback"]
    fine = json.loads((out / "fine.json").read_text())
    assert fine["result"] == {"size": 7, "quick": False} and fine["machine"]["git_commit"] == "abc123"
    summary = (out / "summary.md").read_text()
    assert "**failed**: ValueError: disk on fire" in summary
    assert tables(summary, "fine") == [[{"key": "size", "value": "7"}]]  # the generic table: numbers and text


def test_unknown_part_and_bad_option_stop_before_running(tmp_path):
    with pytest.raises(SystemExit, match="unknown part 'nope'; known parts: fixed_cost, dag"):
        cli.main(["--parts", "dag,nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="expected part.key=value"):
        cli.main(["--parts", "dag", "--out", str(tmp_path), "--set", "dag=3"])
    assert not any(tmp_path.iterdir())


def test_options_are_json_or_text():
    options = cli.parse_options(["dag.seeds=2", 'dag.paper=["paper"]', "aggregation.name=x y"], ["dag", "aggregation"])
    assert options == {"dag": {"seeds": 2, "paper": ["paper"]}, "aggregation": {"name": "x y"}}


def test_without_tabulate_the_json_is_written_and_the_summary_skipped(tmp_path, monkeypatch, capsys):
    _add_part(tmp_path, monkeypatch, "fine", "fake_perf_ok2", "def run(quick):\n    return {'n': 1}\n")
    monkeypatch.setitem(sys.modules, "tabulate", None)  # `import tabulate` raises ImportError, as where it is missing
    out = tmp_path / "out"
    assert cli.main(["--parts", "fine", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["fine.json"]
    assert capsys.readouterr().err.startswith("perf: summary.md not written (ImportError: ")


def _case(name: str, model: str, ours: float, reference: float, **extra) -> dict:
    return {"name": name, "model": model, "input": [3, 32, 32], "batch_size": 128, "steps": 20,
            "ours_images_per_s": ours, "reference_images_per_s": reference, "speedup": round(ours / reference, 2),
            "precision": "bf16", "memory_format": "channels_last", "ours_tflops": None, "peak_fraction": None,
            **extra}


def test_summary_tables_from_result_files(tmp_path):
    machine = {"cpu": "Test CPU", "cores": 2, "torch": "2.14.1", "python": "3.11.7", "date": "2026-01-01",
               "git_commit": "abc"}
    ablation = [{"precision": "fp32", "memory_format": "contiguous", "images_per_s": 95.0, "speedup": 0.95}]
    _write(tmp_path / "throughput.json", {"part": "throughput", "machine": machine, "result": {
        "device": "cpu", "torch_threads": 2, "cases": [_case("digits", "small_cnn", 200.0, 100.0, ablation=ablation)]}})
    # as copied from a GPU machine, without the harness's wrapper
    _write(tmp_path / "throughput_cuda.json", {"device": "NVIDIA H100 80GB HBM3", "cases": [
        _case("cifar100", "resnet110", 3500.0, 1000.0, ours_tflops=123.4567, peak_fraction=0.12478)]})
    _write(tmp_path / "fixed_cost.json", {"part": "fixed_cost", "machine": machine, "result": {"modes": {
        "no_tracking": {"wall": {"median_s": 2.0, "min_s": 1.9}, "process_to_first_step_s": 1.5},
        "tracking": {"wall": {"median_s": 5.0, "min_s": 4.0}, "process_to_first_step_s": None}}}})
    _write(tmp_path / "dag.json", {"part": "dag", "machine": machine, "result": {"grids": {
        "paper": {"cells": 120, "jobs": 59, "dag": {"median_s": 2.0, "min_s": 1.9, "runs_s": [2.0, 2.1, 1.9]},
                  "dry_run": {"median_s": 2.5, "cpu_median_s": 2.25, "runs_s": [2.5]}},
        "synthetic_10000": {"cells": 10000, "jobs": 3360, "synthetic": True,
                            "dag": {"median_s": 30.0, "min_s": 30.0, "runs_s": [30.0]}}},
        "noop": {"paper": {"outputs": 173, "dry_run": {"median_s": 2.4, "cpu_median_s": 2.1, "runs_s": [2.4]},
                           "rerun": {"median_s": 2.6, "cpu_median_s": 2.2, "runs_s": [2.6, 2.7]}}}}})
    _write(tmp_path / "tracking.json", {"part": "tracking", "machine": machine, "result": {
        "cell": "digits/softmax_ce/spcall", "cells": 3, "epochs_per_cell": 10, "modes": {  # sorted, as written
            "flush_0": {"flush_s": 0.0, "epochs": 30, "epoch_s_median": 0.26, "tracker_epoch_ms_mean": 40.0,
                        "per_epoch_fraction": 0.16, "flushes": 33, "run_start_s": [2.0, 0.5, 0.5],
                        "with_start_and_finish_fraction": 0.6, "epoch_s_vs_off": 1.04, "train_s_vs_off": 1.2},
            "off": {"flush_s": 10.0, "epochs": 30, "epoch_s_median": 0.25, "tracker_epoch_ms_mean": 0.001,
                    "per_epoch_fraction": 0.000004, "flushes": 0, "run_start_s": [0.0, 0.0, 0.0],
                    "with_start_and_finish_fraction": 0.0, "epoch_s_vs_off": 1.0, "train_s_vs_off": 1.0}}}})
    _write(tmp_path / "packing.json", {"part": "packing", "machine": machine, "result": {
        "device": "cpu", "cells": 6, "cell": "digits/cosine/spc10", "epochs": 10, "tracking": True, "layouts": [
            {"seeds_per_job": 1, "processes": 6, "cells_written": 6, "wall_s": 27.4, "cells_per_hour": 788,
             "vs_one_per_process": 1.0},
            {"seeds_per_job": 3, "processes": 2, "cells_written": 6, "wall_s": 15.0, "cells_per_hour": 1442,
             "vs_one_per_process": 1.83}]}})
    _write(tmp_path / "default_grid.json", {"part": "default_grid", "machine": machine, "result": {
        "cells": 75, "jobs": 30, "wall_s": 111.44, "noop_rerun_s": 1.7, "noop_rerun_nothing_to_do": True}})
    _write(tmp_path / "extra.json", {"part": "extra", "result": {"a": {"b": 1.5}, "flag": True}})

    summary = build_summary(tmp_path)
    assert stems_in_order(summary) == ["fixed_cost", "dag", "throughput", "throughput_cuda", "packing",
                                       "tracking", "default_grid", "extra"]
    ours, ablation_rows = tables(summary, "throughput")
    assert ours == [{"case": "digits", "model": "small_cnn", "input": "3x32x32", "batch": "128", "steps": "20",
                     "ours img/s": "200", "reference img/s": "100", "speedup": "2", "precision": "bf16",
                     "memory format": "channels_last", "ours TFLOP/s": "—", "of bf16 peak": "—"}]
    assert ablation_rows == [{"case": "digits", "precision": "fp32", "memory format": "contiguous",
                              "ours img/s": "95", "speedup": "0.95"}]
    (cuda,) = tables(summary, "throughput_cuda")  # no ablation rows: no ablation table
    assert (cuda[0]["case"], cuda[0]["speedup"], cuda[0]["ours TFLOP/s"], cuda[0]["of bf16 peak"]) == \
        ("cifar100", "3.5", "123.457", "0.125")
    (modes,) = tables(summary, "fixed_cost")
    assert [(m["mode"], m["process start to first step, median (s)"]) for m in modes] == \
        [("no_tracking", "1.5"), ("tracking", "—")]
    dag, noop = tables(summary, "dag")
    assert [(g["grid"], g["cells"], g["jobs"], g["runs"], g["`-n`, median (s)"]) for g in dag] == \
        [("paper", "120", "59", "3", "2.5"), ("synthetic_10000", "10000", "3360", "1", "—")]
    assert noop == [{"grid": "paper", "outputs present": "173", "`-n`, median (s)": "2.4", "`-n` CPU (s)": "2.1",
                     "rerun, median (s)": "2.6", "rerun CPU (s)": "2.2", "runs": "2"}]
    (modes,) = tables(summary, "tracking")
    assert [(m["mode"], m["of an epoch (%)"], m["flushes"], m["run start per cell (s)"]) for m in modes] == \
        [("off", "0", "0", "0.0, 0.0, 0.0"), ("flush_0", "16", "33", "2.0, 0.5, 0.5")]
    (packing,) = tables(summary, "packing")
    assert [(x["seeds per job"], x["cells written"], x["against one per process"]) for x in packing] == \
        [("1", "6", "1"), ("3", "6", "1.83")]
    assert tables(summary, "default_grid") == [[{"cells": "75", "jobs": "30", "wall (s)": "111.4",
                                                 "no-op rerun (s)": "1.7", "rerun had nothing to do": "True"}]]
    assert tables(summary, "extra") == [[{"key": "a.b", "value": "1.5"}]]
    assert "Machine: Test CPU, 2 cores, torch 2.14.1" in summary
    assert "## throughput_cuda\n\nMachine: not recorded." in summary  # the unwrapped copy
    assert "PASS" not in summary and "FAIL" not in summary  # targets live in docs/performance.md


def test_docs_name_every_part_and_state_the_targets():
    docs = (REPO / "docs" / "performance.md").read_text()
    targets = docs.split("\n## Targets\n", 1)[1].split("\n## ", 1)[0]
    assert targets.count("\n|") >= 8  # a table: header, rule, a row per target
    for part in PARTS:
        assert f"| `{part}` |" in docs, part


def test_the_product_package_neither_ships_nor_imports_the_harness():
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(where=str(REPO), include=include)
    assert "benchmark" in packages and not [p for p in packages if p.split(".")[0] == "perf"]
    for path in (REPO / "benchmark").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] == "perf"], f"{path} imports the harness"
