"""The whole workflow through real Snakemake, DVC and MLflow in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, records, snakemake, workflow_env, write_config
from fixtures.pdf_fonts import font_types

pytestmark = pytest.mark.slow

TINY = {"grid": "tiny", "methods": ["softmax_ce", "cosine"], "samples_per_class": [5, "all"], "seeds": [0, 1],
        "seeds_per_job": 2}


def mlflow_client(repo: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(workflow_env(repo)["MLFLOW_TRACKING_URI"])


def test_tiny_grid_end_to_end(repo: Path) -> None:
    config = write_config(repo, "tiny", epochs=2, **TINY)
    locked = (repo / "dvc.lock").read_text()
    result = snakemake(repo, "--cores", "2", "--configfile", str(config))
    # the console: one line per finished cell, not a block of inputs per job
    lines = [line for line in result.stdout.splitlines() if "test accuracy" in line]
    assert len(lines) == 8 and "code" not in result.stdout

    cells = records(repo)
    assert len(cells) == 8
    for path in cells:
        record = json.loads((repo / path).read_text())
        assert record["status"] == "ok" and record["epochs_run"] == 2 and record["tested_epoch"] == 2
        assert record["test_accuracy"] > 0.2  # chance is 0.1 (two short epochs; tests/test_learning.py learns)
        assert record["curves"]["train_loss"][1] < record["curves"]["train_loss"][0]
        assert set(record["identity"]) == {"settings", "code", "data"}
        assert record["provenance"]["code_commit"] != "unknown"
    for name in ("tiny.md", "tiny.tex", "tiny.csv", "tiny.html", "tiny_cd.png"):
        assert (repo / "results/tables" / name).stat().st_size > 100
    tex = (repo / "results/tables/tiny.tex").read_text()
    assert "\\toprule" in tex and "\\label{tab:tiny}" in tex
    pdfs = list((repo / "results").rglob("*.pdf"))
    assert len(pdfs) >= 4 and all("Type 3" not in font_types(p) for p in pdfs)

    # DVC prepared the data to exactly the hashes pinned in the committed dvc.lock
    assert (repo / "dvc.lock").read_text() == locked
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "prepare@digits"], cwd=repo,
                            env=workflow_env(repo), capture_output=True, text=True, check=True)
    assert "up to date" in status.stdout

    # MLflow: the grid's experiment opens in the training view; a parent run with the config and the
    # tables; one child run per cell with its coordinates, settings, curves (1-based epochs) and artefacts
    client = mlflow_client(repo)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    cell_runs = [r for r in runs if r.data.tags.get("kind") == "cell"]
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "grid"]
    assert len(cell_runs) == 8 and {r.info.status for r in cell_runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in cell_runs} == {parent.info.run_id}
    run = next(r for r in cell_runs if r.data.params["method"] == "cosine")
    assert {"dataset", "method", "samples_per_class", "split", "seed", "grid", "train.lr", "augment.max_shift"} \
        <= set(run.data.params)
    assert run.data.params["train.epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    assert 0 < run.data.metrics["test_accuracy_fraction"] <= 1
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"metrics.json", "cell.log", "confusion.csv"}
    assert run.inputs.dataset_inputs[0].dataset.name == "digits"
    assert {"tiny.md", "tiny.html", "tiny_digits.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "train.epochs" in parent.data.params

    # a second run has nothing to do
    again = snakemake(repo, "-n", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_cpu_cell_is_bit_reproducible(digits: Path) -> None:
    """The same cell trained twice on CPU gives identical curves and accuracy."""
    from benchmark.config import load_config
    from benchmark.grid import cell_settings
    from benchmark.train import Cell, RunOptions, train_cell

    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "cosine_ce")
    settings["train"].update(epochs=2, steps_per_epoch=20)
    options = RunOptions(device="cpu", threads=1, eval_batch_size=256)
    runs = [train_cell(Cell("digits", "cosine_ce", 10, 0, 3), settings, options, digits) for _ in range(2)]
    assert runs[0]["curves"] == runs[1]["curves"]
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]


def test_bad_config_stops_before_any_job(repo_copy: Path) -> None:
    bad = write_config(repo_copy, "bad", methods=["softmax_ce", "cosin"])
    result = snakemake(repo_copy, "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    message = [line for line in (result.stdout + result.stderr).splitlines() if "config error" in line]
    assert len(message) == 1
    assert message[0].startswith("config error at 'methods[1]': 'cosin' is unknown; allowed: ")
    assert not (repo_copy / "logs").exists() and not (repo_copy / "results").exists()


def test_keep_going_leaves_finished_cells_usable_and_failed_ones_missing(repo: Path) -> None:
    """One method crashes; --keep-going finishes the others, and the table names the failed cells missing."""
    config = write_config(repo, "broken", epochs=1, grid="broken", methods=["softmax_ce", "mse"],
                          samples_per_class=[5], seeds=[0, 1], tracking=False)
    source = repo / "benchmark/losses/mse.py"
    line = "return (output.float() - onehot)"
    source.write_text(source.read_text().replace(line, f"raise RuntimeError('injected failure')\n        {line}"))
    result = snakemake(repo, "--cores", "2", "--keep-going", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert sorted(p.split("/")[3] for p in records(repo)) == ["softmax_ce", "softmax_ce"]
    assert not list((repo / "results/cells/digits/mse").rglob("metrics.json"))  # nothing that looks finished
    subprocess.run([sys.executable, "-m", "benchmark", "aggregate", "--config", str(config)], cwd=repo,
                   env=workflow_env(repo), check=True, capture_output=True)
    table = (repo / "results/tables/broken.md").read_text()
    assert "| mse | missing |" in table and "n=2" in table


def _spec(repo: Path, config_path: Path) -> tuple[dict, str]:
    sys.path.insert(0, str(repo))
    from benchmark.config import load_config
    from benchmark.grid import Grid

    pack = Grid(load_config(config_path, base=repo / "config/config.yaml")).packs[0]
    return pack.spec(), pack.marker


def test_a_training_cell_is_watched_live_and_a_resumed_one_continues_its_run(repo: Path) -> None:
    """While a cell trains its run is RUNNING with the epochs so far; SIGTERM ends it KILLED; the resumed cell
    continues the same run, which then holds every epoch once and ends FINISHED."""
    config = write_config(repo, "live", epochs=4, grid="live", methods=["softmax_ce"], samples_per_class=[5],
                          seeds=[0])
    data = yaml.safe_load(config.read_text())
    data["train"]["steps_per_epoch"] = 150
    config.write_text(yaml.safe_dump(data))
    spec, marker = _spec(repo, config)
    env = {**workflow_env(repo), "BENCHMARK_TRACKING_FLUSH_S": "0"}
    store = repo / "results/tracking/live/store.json"
    subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", "live", "--config-json", "{}",
                    "--out", str(store)], cwd=repo, env=env, check=True, capture_output=True)
    command = [sys.executable, "-m", "benchmark", "train", "--pack", json.dumps(spec), "--marker", marker,
               "--device", "cpu", "--threads", "1", "--eval-batch-size", "512", "--cells-per-gpu", "1",
               "--grid", "live", "--tracking", str(store)]
    log = repo / spec["folder"] / "split0" / "seed0" / "cell.log"

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.exists() and text in log.read_text():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared in {log}")

    client = mlflow_client(repo)
    proc = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("epoch 2/4")
    time.sleep(1.0)  # the epoch's metrics are sent right after its line
    os.kill(proc.pid, signal.SIGSTOP)  # paused between epochs: what does the store show?
    try:
        (run,) = client.search_runs([client.get_experiment_by_name("live").experiment_id],
                                    filter_string="tags.kind = 'cell'")
        assert run.info.status == "RUNNING"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert steps in ([1, 2], [1, 2, 3]), steps
        assert run.data.params["method"] == "softmax_ce" and run.data.params["seed"] == "0"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    wait_for("epoch 3/4")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert client.get_run(run.info.run_id).info.status == "KILLED"

    resumed = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in log.read_text()
    (again,) = client.search_runs([client.get_experiment_by_name("live").experiment_id],
                                  filter_string="tags.kind = 'cell'")
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == [1, 2, 3, 4]
