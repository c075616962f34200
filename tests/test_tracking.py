"""16 cell processes logging at once lose no run and no metric, on every tracking back end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from services import mlflow_server, postgres, postgres_available

pytestmark = pytest.mark.slow

PROCESSES = 16
EPOCHS = 40

WORKER = textwrap.dedent("""
    import sys
    from benchmark.tracking import log_cell
    i, epochs = int(sys.argv[1]), int(sys.argv[2])
    metrics = {
        "cell": {"dataset": "digits", "loss": "cosine", "samples_per_class": 5, "seed": i},
        "status": "ok", "test_accuracy": 0.5 + i / 100, "test_balanced_accuracy": 0.5, "wall_time_s": 1.0,
        "curves": {"train_loss": [1.0 / (e + 1) + i for e in range(epochs)], "lr": [0.1] * epochs},
        "data_hash": "abc", "device": "cpu", "provenance": {"code_commit": "x", "packages": {"torch": "2"}},
    }
    print(log_cell("concurrency", metrics, {"train": {"lr": 0.1, "epochs": epochs}}))
""")


def log_concurrently(uri: str, folder: Path) -> list[str]:
    """Initialise the experiment, then start 16 logging processes at once; return their run ids."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", "concurrency", "--out",
                    str(folder / "tracking.json")], cwd=REPO, env=env, check=True, capture_output=True)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(EPOCHS)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(PROCESSES)]
    outputs = [w.communicate(timeout=300) for w in workers]
    failures = [err for w, (_, err) in zip(workers, outputs, strict=True) if w.returncode != 0]
    assert not failures, failures[0][-2000:]
    return [out.strip().splitlines()[-1] for out, _ in outputs]


def check_nothing_lost(uri: str, run_ids: list[str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("concurrency")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    for run in runs:
        seed = int(run.data.params["seed"])
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(EPOCHS))
        assert run.data.metrics["test_accuracy"] == pytest.approx(0.5 + seed / 100)
    assert json.dumps(sorted(int(r.data.params["seed"]) for r in runs)) == json.dumps(list(range(PROCESSES)))


def test_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_nothing_lost(uri, log_concurrently(uri, tmp_path))


def test_mlflow_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "server") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path))


def test_postgresql(tmp_path: Path) -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with postgres(tmp_path / "pg") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path))
