"""MLflow mirror of the results: one experiment per grid, a parent run for the grid, a child run per cell.

The files under results/ are the source of truth; MLflow is for browsing and comparing.
MLflow is imported inside the functions so that it costs nothing until a job logs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

DEFAULT_URI = "sqlite:///mlflow.db"
MAX_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI)


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri())


def _retry(action, attempts: int = 8):
    """Retry on a locked SQLite store: parallel cells may write at the same moment."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:  # MLflow wraps sqlite's OperationalError in its own exceptions
            if "locked" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def init_experiment(grid: str) -> dict:
    """Create the store (if new), the grid's experiment and its parent run; return where they are.

    Runs once before the fan-out: parallel first writes to a fresh SQLite store race.
    """
    client = _client()
    experiment = client.get_experiment_by_name(grid)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(grid)
    parent = _grid_run(client, experiment_id)
    if parent is None:
        parent = client.create_run(experiment_id, run_name=f"{grid} (grid)", tags={"kind": "grid", "grid": grid})
    return {"tracking_uri": tracking_uri(), "experiment": grid, "experiment_id": experiment_id,
            "parent_run_id": parent.info.run_id}


def _grid_run(client, experiment_id: str):
    runs = client.search_runs([experiment_id], filter_string="tags.kind = 'grid'", max_results=1)
    return runs[0] if runs else None


def _locate(client, grid: str) -> tuple[str, str]:
    """The experiment and parent run of `grid`, looked up by name in the current store."""
    experiment = client.get_experiment_by_name(grid)
    parent = _grid_run(client, experiment.experiment_id) if experiment else None
    if parent is None:
        raise RuntimeError(
            f"MLflow experiment {grid!r} or its grid run is missing at {tracking_uri()}; delete "
            f"results/tracking/{grid}.json so that the workflow initialises the store again"
        )
    return experiment.experiment_id, parent.info.run_id


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value
    return out


def _replace_runs(client, experiment_id: str, tag: str, value: str) -> None:
    """Delete earlier runs carrying tag=value, so a recomputed cell has one live run."""
    for run in client.search_runs([experiment_id], filter_string=f"tags.{tag} = '{value}'"):
        client.delete_run(run.info.run_id)


def log_cell(grid: str, metrics: dict, settings: dict) -> str:
    """Log one finished cell as a child run of the grid: parameters, curves (step = epoch), provenance."""
    from mlflow.entities import Metric, Param

    client = _client()
    experiment_id, parent_id = _locate(client, grid)
    cell = metrics["cell"]
    key = f"{cell['dataset']}/{cell['method']}/spc{cell['samples_per_class']}/seed{cell['seed']}"
    now = int(time.time() * 1000)
    params = _flatten("", {**cell, **settings}, {})
    tags = {
        "cell": key,
        "grid": grid,
        "mlflow.parentRunId": parent_id,
        "mlflow.note.content": f"cell {key} of grid {grid}",
        "kind": "cell",
        "status": metrics["status"],
        "data_hash": metrics["data_hash"],
        "device": metrics["device"],
        **_flatten("", metrics["provenance"], {}),
        **_flatten("runtime", metrics.get("runtime", {}), {}),
    }
    series = [Metric(name, float(v), now, step) for name, values in metrics["curves"].items()
              for step, v in enumerate(values)]
    finals = [Metric(name, float(metrics[name]), now, 0)
              for name in ("test_accuracy", "test_balanced_accuracy", "wall_time_s")]
    finals += [Metric(f"timing.{name}", float(value), now, 0)
               for name, value in metrics.get("timing", {}).items() if value is not None]

    def log() -> str:
        _replace_runs(client, experiment_id, "cell", key)
        run = client.create_run(experiment_id, run_name=key, tags={k: str(v) for k, v in tags.items()})
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        everything = finals + series
        for start in range(0, len(everything), MAX_BATCH):
            client.log_batch(run_id, metrics=everything[start:start + MAX_BATCH])
        client.set_terminated(run_id, "FINISHED" if metrics["status"] == "ok" else "FAILED")
        return run_id

    return _retry(log)


def log_summary(grid: str, artifacts: list[Path], summary_metrics: dict[str, float]) -> str:
    """Put the tables, plots and per-column means on the grid's parent run, and mark it finished."""
    from mlflow.entities import Metric

    client = _client()
    _, run_id = _locate(client, grid)

    def log() -> str:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary_metrics.items()]
        for start in range(0, len(metrics), MAX_BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + MAX_BATCH])
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
        return run_id

    return _retry(log)
