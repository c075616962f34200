"""SIGTERM in the middle of a cell, rerun, identical final metrics and one MLflow run for the cell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from benchmark.config import cell_settings, load_config

pytestmark = pytest.mark.slow


def train_command(data: Path, out: Path, settings: dict, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmark", "train", "--dataset", "digits", "--loss", "cosine_ce", "--spc", "10",
            "--seed", "0", "--settings", json.dumps(settings), "--data", str(data), "--out", str(out),
            "--device", "cpu", *extra]


def test_sigterm_checkpoint_and_resume_are_bit_identical(digits: Path, tmp_path: Path) -> None:
    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "cosine_ce")
    settings["train"].update(epochs=4, steps_per_epoch=120)  # epochs long enough to interrupt mid-way
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    tracking = tmp_path / "tracking.json"
    subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", "preempt", "--out", str(tracking)],
                   cwd=REPO, env=env, check=True, capture_output=True)

    reference = tmp_path / "reference" / "metrics.json"
    subprocess.run(train_command(digits, reference, settings), cwd=REPO, check=True, capture_output=True)

    out, saved = tmp_path / "cell" / "metrics.json", tmp_path / "cell" / "checkpoint.pt"
    command = train_command(digits, out, settings, "--checkpoint", str(saved), "--tracking", str(tracking))
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in first.stdout:  # wait until the second epoch has begun, then stop the cell mid-epoch
        if "epoch 1/4" in line:
            break
    time.sleep(0.3)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 75, err
    assert "preempted at epoch 1, step" in err and "run the workflow again to resume" in err
    assert saved.exists() and not out.exists()

    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stdout
    assert not saved.exists()

    resumed, uninterrupted = json.loads(out.read_text()), json.loads(reference.read_text())
    assert resumed["resumed"] is True
    assert resumed["curves"] == uninterrupted["curves"]
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    assert resumed["test_balanced_accuracy"] == uninterrupted["test_balanced_accuracy"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("preempt")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")
    assert len(runs) == 1 and runs[0].info.run_id == resumed["mlflow_run_id"]


def test_checkpoint_of_other_settings_is_ignored(digits: Path, tmp_path: Path) -> None:
    """A checkpoint left by a run with different settings must not leak into this one."""
    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "cosine_ce")
    settings["train"].update(epochs=2, steps_per_epoch=150)
    out, saved = tmp_path / "metrics.json", tmp_path / "checkpoint.pt"
    command = train_command(digits, out, settings, "--checkpoint", str(saved))
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in first.stdout:
        if "epoch 1/2" in line:
            break
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    assert first.returncode == 75 and saved.exists()
    settings["train"]["lr"] = 0.01
    rerun = subprocess.run(train_command(digits, out, settings, "--checkpoint", str(saved)), cwd=REPO,
                           capture_output=True, text=True)
    assert rerun.returncode == 0 and "resuming" not in rerun.stdout


def test_a_diverging_cell_ends_as_diverged_with_its_last_metrics(digits: Path, tmp_path: Path) -> None:
    settings = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "mse")
    settings["train"].update(epochs=3, lr=1e30)  # the first update overflows the weights
    out = tmp_path / "metrics.json"
    command = train_command(digits, out, settings)
    command[command.index("cosine_ce")] = "mse"
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    metrics = json.loads(out.read_text())
    assert metrics["status"] == "diverged"
    assert metrics["epochs_run"] == 1 and len(metrics["curves"]["train_loss"]) == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0  # the last weights are still evaluated and recorded
