"""The performance harness (python -m benchmark.perf): real runs of the cheap parts on tiny sizes,
the summary's tables and targets from hand-written result files, and one clear line per failed part.
No assertion on how fast anything is: the figures are the harness's output, not a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.perf import __main__ as perf
from benchmark.perf.report import build_summary

REPO = Path(__file__).resolve().parent.parent
TINY = [  # each part as small as it goes: 50-cell grids, one run of each thing
    "fixed_cost.repeats=1", "fixed_cost.import_runs=1", "fixed_cost.warmup=false",
    'fixed_cost.modules=["benchmark.tracking"]',
    "dag.seeds=2", 'dag.paper=["paper"]',
    "aggregation.seeds=2",
]


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def _target_rows(summary: str) -> dict[str, list[str]]:
    section = summary.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("| ").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {row[0]: row[1:] for row in rows[1:]}


@pytest.mark.slow
def test_cheap_parts_for_real(tmp_path):
    out = tmp_path / "perf"
    args = [a for item in TINY for a in ("--set", item)]
    result = subprocess.run([sys.executable, "-m", "benchmark.perf", "--parts", "fixed_cost,dag,aggregation",
                             "--out", str(out), "--quick", *args], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["aggregation.json", "dag.json", "fixed_cost.json", "summary.md"]

    records = {name: json.loads((out / f"{name}.json").read_text()) for name in ("fixed_cost", "dag", "aggregation")}
    for name, record in records.items():
        assert record["part"] == name and record["quick"] is True and "error" not in record
        assert record["machine"]["cores"] == os.cpu_count() and record["machine"]["cpu"]
        assert record["machine"]["torch"] and record["machine"]["python"] and record["elapsed_s"] > 0

    fixed = records["fixed_cost"]["result"]
    assert set(fixed["modes"]) == {"no_tracking", "tracking"}
    for mode in fixed["modes"].values():
        assert mode["wall"]["median_s"] > 0 and len(mode["wall"]["runs_s"]) == 1
        assert mode["process_to_first_step_s"] is None or mode["process_to_first_step_s"] > 0
    assert fixed["prepare_digits_s"] > 0 and fixed["tracking_init_s"] > 0
    assert set(fixed["imports"]["modules"]) == {"benchmark.tracking"}
    assert fixed["imports"]["python_startup_s"] > 0

    grids = records["dag"]["result"]["grids"]
    assert set(grids) == {"paper", "synthetic_50", "synthetic_50_one_per_job"}
    assert (grids["paper"]["cells"], grids["synthetic_50"]["cells"]) == (120, 50)
    # 50 cells = 25 (dataset, loss, spc) x 2 seeds: one pack each, or a job per cell, plus 4 other jobs
    assert (grids["synthetic_50"]["jobs"], grids["synthetic_50_one_per_job"]["jobs"]) == (29, 54)
    for g in grids.values():
        assert g["jobs"] > 0 and g["dag"]["median_s"] > 0

    agg = records["aggregation"]["result"]
    assert agg["cells"] == agg["metrics_files"] == agg["in_process"]["rows"] == 50
    assert agg["subprocess"]["median_s"] > 0 and agg["in_process"]["plots_s"] > 0
    assert "results/tables/perf_synthetic.md" in agg["outputs"]
    assert "aggregated 50 cells" in agg["cli_output"]

    summary = (out / "summary.md").read_text()
    for name in ("fixed_cost", "dag", "aggregation"):
        assert f"\n## {name}\n" in summary
    assert "| paper | 120 |" in summary and "| synthetic_50 | 50 |" in summary
    rows = _target_rows(summary)
    assert rows["DAG build, paper grid < 10 s"][1] in ("PASS", "FAIL")
    assert rows["aggregation of 10,000 cells < 10 s"] == [rows["aggregation of 10,000 cells < 10 s"][0], "—"]
    assert "for 50 cells" in rows["aggregation of 10,000 cells < 10 s"][0]
    assert rows["default grid end to end ≥ 2x faster than 257 s"] == ["not measured", "—"]


def _fake_part(tmp_path: Path, monkeypatch, body: str) -> None:
    (tmp_path / "fake_perf_parts.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(perf.PARTS, "broken", "fake_perf_parts")
    monkeypatch.setitem(perf.PARTS, "absent", "benchmark.perf.no_such_part")
    monkeypatch.setattr(perf, "git_commit", lambda: "abc123")


def test_failed_parts_give_one_line_and_the_others_run(tmp_path, monkeypatch, capsys):
    _fake_part(tmp_path, monkeypatch,
               "def run(quick, size=1):\n    raise ValueError('disk on fire\\nsecond line')\n")
    monkeypatch.setitem(perf.PARTS, "fine", "fake_perf_ok")
    (tmp_path / "fake_perf_ok.py").write_text("def run(quick, size=1):\n    return {'size': size, 'quick': quick}\n")
    out = tmp_path / "out"
    code = perf.main(["--parts", "broken,absent,fine", "--out", str(out), "--set", "fine.size=7"])
    assert code == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["perf: part broken failed: ValueError: disk on fire",
                      "perf: part absent failed: ModuleNotFoundError: No module named 'benchmark.perf.no_such_part'"]
    broken = json.loads((out / "broken.json").read_text())
    assert broken["error"] == "ValueError: disk on fire" and "Traceback" in broken["traceback"]
    assert json.loads((out / "fine.json").read_text())["result"] == {"size": 7, "quick": False}
    summary = (out / "summary.md").read_text()
    assert "**failed**: ValueError: disk on fire" in summary
    assert "## fine" in summary and "| size | 7 |" in summary


def test_unknown_part_and_bad_option_stop_before_running(tmp_path):
    with pytest.raises(SystemExit, match="unknown part 'nope'; known parts: fixed_cost, dag"):
        perf.main(["--parts", "dag,nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="expected part.key=value"):
        perf.main(["--parts", "dag", "--out", str(tmp_path), "--set", "dag=3"])
    assert not any(tmp_path.iterdir())


def test_options_are_json_or_text():
    options = perf.parse_options(["dag.seeds=2", 'dag.paper=["paper"]', "aggregation.name=x y"], ["dag", "aggregation"])
    assert options == {"dag": {"seeds": 2, "paper": ["paper"]}, "aggregation": {"name": "x y"}}


def _case(name: str, model: str, speedup: float) -> dict:
    return {"name": name, "model": model, "input": [3, 32, 32], "batch_size": 128, "steps": 20,
            "ours_images_per_s": 100.0 * speedup, "reference_images_per_s": 100.0, "speedup": speedup,
            "precision": "bf16", "memory_format": "channels_last"}


def test_summary_tables_and_targets_from_result_files(tmp_path):
    machine = {"cpu": "Test CPU", "cores": 2, "torch": "2.14.1", "python": "3.11.7", "date": "2026-01-01",
               "git_commit": "abc"}
    _write(tmp_path / "throughput.json", {"part": "throughput", "machine": machine, "result": {
        "device": "cpu", "cases": [_case("digits", "small_cnn", 2.0), _case("cifar", "resnet110", 1.2)]}})
    # as copied from a GPU machine, without the harness's wrapper
    _write(tmp_path / "throughput_cuda.json", {"device": "cuda:0 (NVIDIA H100)", "cases": [
        _case("cifar", "resnet110", 3.5), _case("cub", "resnet50", 1.4)]})
    _write(tmp_path / "fixed_cost.json", {"part": "fixed_cost", "machine": machine, "result": {"modes": {
        "no_tracking": {"wall": {"median_s": 2.0, "min_s": 1.9}, "process_to_first_step_s": 1.5},
        "tracking": {"wall": {"median_s": 5.0, "min_s": 4.0}, "process_to_first_step_s": None}}}})
    _write(tmp_path / "dag.json", {"part": "dag", "machine": machine, "result": {"grids": {
        "paper": {"cells": 120, "jobs": 59, "dag": {"median_s": 2.0, "min_s": 1.9, "runs_s": [2.0]}},
        "paper_size": {"cells": 84, "jobs": 40, "dag": {"median_s": 11.0, "min_s": 10.5, "runs_s": [11.0]}},
        "synthetic_10000": {"cells": 10000, "jobs": 3360, "synthetic": True,
                            "dag": {"median_s": 30.0, "min_s": 30.0, "runs_s": [30.0]}}}}})
    _write(tmp_path / "aggregation.json", {"part": "aggregation", "machine": machine, "result": {
        "cells": 10000, "subprocess": {"median_s": 4.0, "min_s": 3.9}, "in_process": {"plots_s": 1.5}}})
    _write(tmp_path / "default_grid.json", {"part": "default_grid", "machine": machine, "result": {
        "cells": 75, "jobs": 30, "wall_s": 100.0, "baseline_s": 257.0, "speedup": 2.57, "noop_rerun_s": 2.0}})

    summary = build_summary(tmp_path)
    rows = _target_rows(summary)
    assert rows["throughput digits on cpu (throughput): speedup ≥ 1.5x"] == ["2.00x", "PASS"]
    assert rows["throughput cifar on cpu (throughput): speedup ≥ 1.5x"] == ["1.20x", "FAIL"]
    assert rows["throughput cifar on cuda:0 (NVIDIA H100) (throughput_cuda): speedup ≥ 3x"] == ["3.50x", "PASS"]
    assert rows["throughput cub on cuda:0 (NVIDIA H100) (throughput_cuda): speedup ≥ 1.5x"] == ["1.40x", "FAIL"]
    assert rows["fixed cost per job (process start to first step) < 3 s, no_tracking"] == ["1.50 s", "PASS"]
    assert rows["fixed cost per job (process start to first step) < 3 s, tracking"][1] == "—"
    assert rows["DAG build, paper grid < 10 s"] == ["2.00 s", "PASS"]
    assert rows["DAG build, paper_size grid < 10 s"] == ["11.00 s", "FAIL"]
    assert rows["DAG build, synthetic 10,000-cell grid < 60 s"] == ["30.00 s", "PASS"]
    assert rows["aggregation of 10,000 cells < 10 s"] == ["4.00 s", "PASS"]
    assert rows["default grid end to end ≥ 2x faster than 257 s"] == ["100.0 s (2.57x)", "PASS"]
    # every file has its section, the throughput ones as a table of cases
    for stem in ("fixed_cost", "dag", "aggregation", "throughput", "throughput_cuda", "default_grid"):
        assert f"\n## {stem}\n" in summary
    row = "| cifar | resnet110 | 3x32x32 | 128 | 20 | 350.0 | 100.0 | 3.50x | bf16 | channels_last | — | — |"
    assert row in summary
    assert "Machine: Test CPU, 2 cores, torch 2.14.1" in summary
    assert "Machine: not recorded." in summary  # the unwrapped copy


def test_summary_without_throughput_says_not_measured(tmp_path):
    summary = build_summary(tmp_path)
    rows = _target_rows(summary)
    assert rows["throughput CPU: speedup ≥ 1.5x"] == ["not measured", "—"]
    assert rows["throughput cifar/resnet110 on CUDA: speedup ≥ 3x"] == ["not measured", "—"]
    assert all(status == "—" for _, status in rows.values())
