"""16 cell processes logging at once lose no run and no metric, on every tracking back end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from services import EPOCHS, PROCESSES, log_concurrently, mlflow_server, postgres, postgres_available

pytestmark = pytest.mark.slow

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
    check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])


def test_mlflow_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "server") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])


def test_postgresql(tmp_path: Path) -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with postgres(tmp_path / "pg") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])
