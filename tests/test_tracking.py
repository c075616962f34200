"""16 cell processes logging at once lose no run, no metric and no artefact, on every tracking back end
(slow: real stores); and the race they exposed, in a fast test."""

from __future__ import annotations

from pathlib import Path

import pytest
from services import EPOCHS, PROCESSES, log_concurrently, mlflow_server, postgres, postgres_available

from benchmark.tracking import _log_dataset


def check_nothing_lost(uri: str, run_ids: list[str]) -> None:
    """Each process's run is there once, FINISHED, with every epoch of both curves, its final metric and its
    artefacts: what a lost write, a run created twice or a swallowed store error would each break."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("concurrency")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")
    assert len(run_ids) == PROCESSES and sorted(r.info.run_id for r in runs) == sorted(run_ids)
    assert sorted(int(r.data.params["seed"]) for r in runs) == list(range(PROCESSES))
    for run in runs:
        seed = int(run.data.params["seed"])
        assert run.info.status == "FINISHED" and run.data.tags["cell"] == f"digits/cosine/spc5/split0/seed{seed}"
        losses = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss"))
        assert losses == [(e, pytest.approx(1.0 / e + seed)) for e in range(1, EPOCHS + 1)]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "lr")] == list(range(1, EPOCHS + 1))
        assert run.data.metrics["test_accuracy_fraction"] == pytest.approx(0.5 + seed / 100)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"metrics.json", "cell.log"}


@pytest.mark.slow
def test_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])


@pytest.mark.slow
def test_mlflow_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "server") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])


@pytest.mark.slow
def test_postgresql(tmp_path: Path) -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with postgres(tmp_path / "pg") as uri:
        check_nothing_lost(uri, log_concurrently(uri, tmp_path)[0])


class RacingClient:
    """log_inputs fails as MLflow does when another cell inserted the same dataset row first, `losses` times."""

    def __init__(self, losses: int, message: str = "(sqlite3.IntegrityError) UNIQUE constraint failed") -> None:
        self.losses, self.message, self.calls = losses, message, 0

    def log_inputs(self, run_id: str, datasets: list) -> None:
        self.calls += 1
        if self.calls <= self.losses:
            raise RuntimeError(self.message)


def test_a_dataset_input_that_lost_the_insert_race_is_logged_again() -> None:
    client = RacingClient(losses=2)
    _log_dataset(client, "run", object())
    assert client.calls == 3
    postgres_style = RacingClient(losses=1, message='duplicate key value violates unique constraint "datasets_pk"')
    _log_dataset(postgres_style, "run", object())
    assert postgres_style.calls == 2


def test_other_store_errors_and_a_lasting_conflict_still_raise() -> None:
    with pytest.raises(RuntimeError, match="read-only"):
        _log_dataset(RacingClient(losses=1, message="attempt to write a read-only database"), "run", object())
    with pytest.raises(RuntimeError, match="UNIQUE"):
        _log_dataset(RacingClient(losses=10), "run", object(), attempts=3)
