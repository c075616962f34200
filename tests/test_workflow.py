"""The whole workflow through real Snakemake, DVC and MLflow, in a temporary copy of the repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, snakemake, workflow_env, write_config

pytestmark = pytest.mark.slow

TINY = {
    "grid": "tiny",
    "losses": ["softmax_ce", "cosine"],
    "samples_per_class": [5, "all"],
    "seeds": [0, 1],
    "seeds_per_job": 1,  # one job per cell: the counts below are cells (tests/test_packing.py covers packs)
}


def tiny_config(repo: Path) -> Path:
    return write_config(repo, "tiny", epochs=2, **TINY)


def cell_files(repo: Path) -> dict[str, float]:
    return {str(p.relative_to(repo)): p.stat().st_mtime for p in (repo / "results" / "cells").rglob("metrics.json")}


def mlflow_runs(repo: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(workflow_env(repo)["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    return client.search_runs([exp.experiment_id], max_results=1000)


def scheduled_cells(dry_run_output: str) -> list[str]:
    """Loss names of the train_cell jobs a dry run lists."""
    lines = dry_run_output.splitlines()
    return [line.split("loss=")[1].split(",")[0] for i, line in enumerate(lines)
            if "wildcards:" in line and "loss=" in line]


def test_tiny_grid_end_to_end(repo_copy: Path) -> None:
    repo = repo_copy
    config = tiny_config(repo)
    locked = (repo / "dvc.lock").read_text()
    snakemake(repo, "--cores", "2", "--configfile", str(config))

    # every cell, the tables and the plots
    cells = cell_files(repo)
    assert len(cells) == 8
    for path in cells:
        metrics = json.loads((repo / path).read_text())
        assert metrics["status"] == "ok"
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
        assert len(metrics["curves"]["train_loss"]) == 2
        assert metrics["provenance"]["code_commit"] != "unknown"
        assert metrics["mlflow_run_id"]
    table = (repo / "results/tables/tiny.md").read_text()
    assert "softmax_ce" in table and "cosine" in table and "(n=2)" in table and "**" in table
    for suffix in ("tex", "csv"):
        assert (repo / f"results/tables/tiny.{suffix}").stat().st_size > 0
    for suffix in ("png", "pdf"):
        assert (repo / f"results/plots/tiny_digits.{suffix}").stat().st_size > 1000

    # DVC prepared the data to exactly the hashes pinned in the committed dvc.lock
    assert (repo / "dvc.lock").read_text() == locked
    # (only digits' stage: the downloaded datasets' stages have never run in this copy)
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "prepare@digits"], cwd=repo, env=workflow_env(repo),
                            capture_output=True, text=True, check=True)
    assert "up to date" in status.stdout

    # MLflow: a grid run holding the artefacts, with one child run per cell and its per-epoch curves
    runs = mlflow_runs(repo, "tiny")
    cell_runs = [r for r in runs if r.data.tags.get("kind") == "cell"]
    summary = [r for r in runs if r.data.tags.get("kind") == "grid"]
    assert len(cell_runs) == 8 and len(summary) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in cell_runs} == {summary[0].info.run_id}
    run = cell_runs[0]
    assert {"test_accuracy", "train_loss", "lr"} <= set(run.data.metrics)
    assert run.data.params["train.epochs"] == "2"
    assert run.data.tags["data_hash"] and run.data.tags["code_commit"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(workflow_env(repo)["MLFLOW_TRACKING_URI"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    artifacts = {a.path for a in client.list_artifacts(summary[0].info.run_id)}
    assert {"tiny.md", "tiny.tex", "tiny.csv", "tiny_digits.png", "tiny_digits.pdf"} <= artifacts

    # a second run has nothing to do
    again = snakemake(repo, "-n", "--cores", "2", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr

    # a change to one loss's config reruns only that loss's cells (dry run)
    original = config.read_text()
    changed = yaml.safe_load(original)
    changed["dataset_settings"]["digits"]["train"]["lr"]["cosine"] = 0.25
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    dry = snakemake(repo, "-n", "--cores", "2", "--configfile", str(config))
    assert sorted(scheduled_cells(dry.stdout)) == ["cosine"] * 4
    config.write_text(original)

    # a change to one loss's code reruns only that loss's cells, and MLflow keeps one run per cell
    # (Snakemake compares input checksums: a bare `touch` without a content change reruns nothing)
    source = repo / "benchmark/losses/cosine.py"
    source.write_text(source.read_text() + "\n# edited by the test\n")
    before = cell_files(repo)
    snakemake(repo, "--cores", "2", "--configfile", str(config))
    after = cell_files(repo)
    rerun = sorted(path.split("/")[3] for path in after if after[path] != before[path])
    assert rerun == ["cosine"] * 4
    cell_runs = [r for r in mlflow_runs(repo, "tiny") if r.data.tags.get("kind") == "cell"]
    assert len(cell_runs) == 8


def test_cpu_cell_is_bit_reproducible(tmp_path: Path) -> None:
    """The same cell trained twice on CPU gives identical curves and accuracy."""
    from benchmark.config import cell_settings, load_config
    from benchmark.train import Cell, train_cell

    prepared = REPO / "data" / "prepared" / "digits"
    if not prepared.exists():
        subprocess.run([sys.executable, "-m", "benchmark", "prepare", "digits", "--out", str(tmp_path / "digits")],
                       cwd=REPO, check=True)
        prepared = tmp_path / "digits"
    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "cosine_ce")
    settings["train"]["epochs"] = 2
    settings["device"] = "cpu"
    runs = [train_cell(Cell("digits", "cosine_ce", 10, 3), settings, prepared) for _ in range(2)]
    assert runs[0]["curves"] == runs[1]["curves"]
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]


def test_bad_config_stops_before_any_job(repo_copy: Path) -> None:
    bad = write_config(repo_copy, "bad", losses=["softmax_ce", "cosin"])
    result = snakemake(repo_copy, "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    message = [line for line in (result.stdout + result.stderr).splitlines() if "config error" in line]
    assert len(message) == 1
    assert message[0].startswith("config error at 'losses[1]': 'cosin' is unknown; allowed: ")
    assert "cosine, cosine_ce" in message[0]
    assert not (repo_copy / "logs").exists() and not (repo_copy / "results" / "cells").exists()


def test_keep_going_leaves_finished_cells_usable_and_failed_ones_missing(repo_copy: Path) -> None:
    """One loss crashes; --keep-going finishes the others, and the table names the failed cells missing."""
    repo = repo_copy
    config = write_config(repo, "broken", epochs=1, grid="broken", losses=["softmax_ce", "mse"],
                          samples_per_class=[5], seeds=[0, 1])
    source = repo / "benchmark/losses/mse.py"
    source.write_text(source.read_text().replace("return (output.float() - onehot)",
                                                 "raise RuntimeError('injected failure')\n        return (output"))
    result = snakemake(repo, "--cores", "2", "--keep-going", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert sorted(p.split("/")[3] for p in cell_files(repo)) == ["softmax_ce", "softmax_ce"]
    assert not list((repo / "results/cells/digits/mse").rglob("*.json"))  # nothing that looks finished
    subprocess.run([sys.executable, "-m", "benchmark", "aggregate", "--config", str(config)], cwd=repo,
                   env=workflow_env(repo), check=True, capture_output=True)
    table = (repo / "results/tables/broken.md").read_text()
    assert "| mse | missing |" in table and "(n=2)" in table
