"""MLflow mirror of the results: an experiment per grid, a parent run for the grid, a live run per cell.

The files under results/ are the source of truth; MLflow is for watching and browsing. The store is
MLFLOW_TRACKING_URI (default sqlite:///mlflow.db in the repository). Three moments:

1. Before any job (the workflow's onstart, `python -m benchmark tracking-init`): the store is checked
   with a short timeout (reachable, writable), the grid's experiment (opening in MLflow's model-training
   view) and its parent run (the resolved config as parameters) are created, and where they are is
   written to results/tracking/<grid>/store.json for the jobs.
2. While a cell trains (`CellTracker`): its run starts RUNNING with the cell's coordinates and every
   setting as parameters and the prepared dataset as its input, logs per epoch (train loss, lr,
   validation accuracy, epoch time, images per second; batched, see FLUSH_S), and ends FINISHED,
   FAILED (diverged or crashed) or KILLED (preempted; the resumed cell continues the same run), with
   metrics.json, the cell's log and its confusion matrix as artefacts. A tracker never raises: the
   result is written before the store is told, and a store that fails marks the cell "not yet logged"
   in its tracking.json.
3. After the cells (`python -m benchmark track`, the grid's `track` job): every cell of the grid gets
   exactly one complete run in the grid's experiment (a cell trained by another grid, or one whose
   logging failed, is logged or completed from its record, never retrained), and the parent run gets
   the tables, plots, report and config. Its ledger is results/tracking/<grid>.json.
Accuracies are logged as fractions under names ending in `_fraction`; steps are 1-based epochs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from benchmark.io import write_json

DEFAULT_URI = "sqlite:///mlflow.db"
MAX_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call
MAX_PARAMS = 100  # and at most 100 parameters
FLUSH_S = float(os.environ.get("BENCHMARK_TRACKING_FLUSH_S", "10"))  # per-epoch metrics are sent this often
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow 3: open the training view


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI)


def _quick_failures() -> None:
    """A dead server must fail in seconds, not after MLflow's default retries (about 4 minutes)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def _client(uri: str | None = None):
    _quick_failures()
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri or tracking_uri())


def _retry(action, attempts: int = 8):
    """Retry on a locked SQLite store: parallel cells may write at the same moment."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:  # MLflow wraps sqlite's OperationalError in its own exceptions
            if "locked" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def flatten(value, prefix: str = "", out: dict | None = None) -> dict:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def _params(client, run_id: str, values: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, (json.dumps(v) if isinstance(v, list | dict) else str(v))[:6000]) for k, v in values.items()]
    for start in range(0, len(items), MAX_PARAMS):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS])


def _metrics(client, run_id: str, metrics: list) -> None:
    for start in range(0, len(metrics), MAX_BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + MAX_BATCH])


def store_identity(experiment) -> str:
    """Which experiment of which store a run lives in: its id and creation time (ms). A recreated store has
    the same URI but another identity; the same store served at another address keeps its identity."""
    return f"{experiment.experiment_id}@{experiment.creation_time}"


# --------------------------------------------------------------------------------------------- 1: grid


def init_grid(grid: str, config: dict) -> dict:
    """Create (or find) the grid's experiment and parent run; raise on an unreachable or read-only store."""
    client = _client()
    experiment = client.get_experiment_by_name(grid)
    if experiment is None:
        client.create_experiment(grid, tags=EXPERIMENT_KIND)
        experiment = client.get_experiment_by_name(grid)
    elif experiment.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
        client.set_experiment_tag(experiment.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'grid'", max_results=1)
    if runs:
        parent = runs[0]
        client.set_tag(parent.info.run_id, "checked", str(int(time.time())))  # proves the store is writable
    else:
        parent = client.create_run(experiment.experiment_id, run_name=f"{grid} (grid)",
                                   tags={"kind": "grid", "grid": grid,
                                         "mlflow.note.content": f"grid {grid}: the tables, plots and config"})
        _params(client, parent.info.run_id, flatten(config))
    return {"uri": tracking_uri(), "experiment": grid, "experiment_id": experiment.experiment_id,
            "parent_run_id": parent.info.run_id, "store": store_identity(experiment)}


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (None for other stores)."""
    parsed = urlparse(uri)
    return Path(parsed.path.removeprefix("/")) if parsed.scheme == "sqlite" and uri.startswith("sqlite:///") else None


def ledger_is_stale(ledger: Path, uri: str) -> bool:
    """Whether a grid's ledger describes runs of a store that is no longer there (a deleted or recreated
    SQLite store): read with the standard sqlite3 module, cheap enough while the DAG is built."""
    db = sqlite_path(uri)
    if db is None or not ledger.exists():
        return False
    try:
        recorded = json.loads(ledger.read_text())
    except ValueError:
        return True
    if recorded.get("uri") != uri:
        return True
    if not db.exists():
        return True
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT experiment_id, creation_time FROM experiments WHERE name = ?",
                                     (recorded.get("experiment"),)).fetchone()
    except sqlite3.Error:
        return True
    return row is None or f"{row[0]}@{row[1]}" != recorded.get("store")


# --------------------------------------------------------------------------------------------- 2: cell


def cell_name(coordinates: dict) -> str:
    c = coordinates
    return f"{c['dataset']}/{c['method']}/spc{c['samples_per_class']}/split{c['split']}/seed{c['seed']}"


class CellTracker:
    """The live MLflow run of one cell being trained. Every method swallows store failures (see module)."""

    def __init__(self, context: dict, cell_dir: Path, coordinates: dict, settings: dict, identity: dict) -> None:
        self.info = context.get("tracking")
        self.state_path = Path(cell_dir) / "tracking.json"
        self.coordinates, self.settings, self.identity = coordinates, settings, identity
        self.grid = context.get("grid")
        self.role = context.get("role")  # "teacher": a teacher cell that is not a row of the grid's tables
        self.pending: list = []
        self.last_flush = time.monotonic()
        self.run_id = None
        self.logged_epochs = 0
        self.client = None
        if self.info is not None:
            self._safe(self._start)

    # -- state kept beside the record: which run mirrors this cell in which store
    def _state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, complete: bool) -> None:
        state = self._state()
        state[self.info["store"]] = {"run_id": self.run_id, "experiment": self.info["experiment"],
                                     "complete": complete, "logged_epochs": self.logged_epochs}
        write_json(self.state_path, state)

    def _safe(self, action, *args) -> None:
        if self.info is None:
            return
        try:
            _retry(lambda: action(*args))
        except Exception as error:  # any store failure: keep training, log later (the track job)
            print(f"{cell_name(self.coordinates)}: MLflow at {self.info['uri']} failed ({type(error).__name__}: "
                  f"{str(error).splitlines()[0][:200]}); the result is kept and the grid's track job logs it",
                  file=sys.stderr, flush=True)
            if self.run_id is not None:
                with contextlib.suppress(OSError):
                    self._save_state(complete=False)
            self.info = None

    def _start(self) -> None:
        self.client = _client(self.info["uri"])
        previous = self._state().get(self.info["store"])
        if previous and previous.get("run_id") and not previous.get("complete"):
            try:  # a resumed cell continues its run
                self.client.get_run(previous["run_id"])
                self.run_id = previous["run_id"]
                self.logged_epochs = previous.get("logged_epochs", 0)
                self.client.update_run(self.run_id, status="RUNNING")
                self._save_state(complete=False)
                return
            except Exception:  # noqa: BLE001 (the run is gone: start a new one)
                pass
        self.run_id = start_cell_run(self.client, self.info, self.coordinates, self.settings, self.identity,
                                     self.grid, self.role)
        self._save_state(complete=False)

    def epoch(self, run, progress, metrics: dict) -> None:
        """Buffer one epoch's metrics (step = the 1-based epoch); send them every FLUSH_S seconds."""
        if self.info is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = progress.epoch  # epochs finished: the 1-based number of the epoch just ended
        for name, value in metrics.items():
            key = "val_accuracy_fraction" if name == "val_accuracy" else name
            self.pending.append(Metric(key, float(value), now, step))
        self.logged_epochs = step
        if time.monotonic() - self.last_flush >= FLUSH_S:
            self._safe(self._flush)

    def _flush(self) -> None:
        if self.pending:
            _metrics(self.client, self.run_id, self.pending)
            self.pending = []
            self._save_state(complete=False)
        self.last_flush = time.monotonic()

    def stopped(self, status: str) -> None:
        """Preempted (KILLED) or crashed (FAILED): send what there is and end the run with that status."""
        def stop() -> None:
            self._flush()
            self.client.set_terminated(self.run_id, status)
            self._save_state(complete=False)
        self._safe(stop)

    def finished(self, record: dict, log: Path) -> None:
        def finish() -> None:
            self._flush()
            finish_cell_run(self.client, self.run_id, record, Path(log).parent)
            self._save_state(complete=True)
        self._safe(finish)


def start_cell_run(client, info: dict, coordinates: dict, settings: dict, identity: dict, grid: str | None,
                   role: str | None = None) -> str:
    """Create a cell's run (RUNNING) with its parameters, tags and dataset input; return its id.

    A student's run is tagged `teacher` (its teacher's cell) and `teacher_key`; a teacher that is not a row
    of the grid's tables is tagged `role: teacher`.
    """
    from mlflow.entities import Dataset, DatasetInput

    name = cell_name(coordinates)
    tags = {"kind": "cell", "cell": name, "grid": info["experiment"], "mlflow.parentRunId": info["parent_run_id"],
            "mlflow.note.content": f"cell {name} of grid {info['experiment']}",
            **{f"identity.{k}": v for k, v in identity.items()}}
    if role is not None:
        tags["role"] = role
        tags["mlflow.note.content"] += f" ({role}: not a table row)"
    if "teacher" in settings:
        teacher = settings["teacher"]
        tags["teacher"] = cell_name({**coordinates, "method": teacher["label"]})
        tags["teacher_key"] = teacher["key"]
        tags["mlflow.note.content"] += f", student of {tags['teacher']}"
    run = client.create_run(info["experiment_id"], run_name=name, tags=tags)
    params = {**coordinates, "grid": grid or info["experiment"], **flatten(settings)}
    _params(client, run.info.run_id, params)
    dataset = Dataset(name=coordinates["dataset"], digest=identity["data"], source_type="local",
                      source=f"data/prepared/{coordinates['dataset']}")
    _log_dataset(client, run.info.run_id, DatasetInput(dataset))
    return run.info.run_id


def _log_dataset(client, run_id: str, dataset_input, attempts: int = 4) -> None:
    """log_inputs, again when it lost a race: cells starting at once all insert the same dataset row (the
    experiment's (name, digest) is unique), and the losers fail on the constraint although the row now exists."""
    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=[dataset_input])
            return
        except Exception as error:  # sqlite: "UNIQUE constraint failed"; PostgreSQL: "violates unique constraint"
            if "unique constraint" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def finish_cell_run(client, run_id: str, record: dict, cell_dir: Path) -> None:
    """The final metrics and artefacts of a finished cell, then FINISHED (or FAILED when it diverged)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    finals = {"test_accuracy_fraction": record["test_accuracy"],
              "test_balanced_accuracy_fraction": record["test_balanced_accuracy"],
              "wall_time_s": record["wall_time_s"], **flatten(record.get("timing", {}), "timing")}
    _metrics(client, run_id, [Metric(k, float(v), now, record["epochs_run"]) for k, v in finals.items()
                              if v is not None])
    for name in ("metrics.json", "cell.log", "confusion.csv", "weights.pt"):
        if (cell_dir / name).exists():
            client.log_artifact(run_id, str(cell_dir / name))
    client.set_tag(run_id, "status", record["status"])
    client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")


def log_from_record(client, info: dict, record: dict, cell_dir: Path, run_id: str | None, logged_epochs: int,
                    grid: str) -> str:
    """Make the cell's run in `info`'s experiment complete from its record: create it if there is none, send
    the epochs after `logged_epochs`, the final metrics and the artefacts. Nothing is retrained."""
    from mlflow.entities import Metric

    if run_id is None:
        run_id = start_cell_run(client, info, record["cell"], record["settings"], record["identity"], grid)
        logged_epochs = 0
    now = int(time.time() * 1000)
    series = [Metric("val_accuracy_fraction" if n == "val_accuracy" else n, float(v), now, epoch)
              for n, values in record["curves"].items() for epoch, v in enumerate(values, start=1)
              if epoch > logged_epochs]
    _metrics(client, run_id, series)
    finish_cell_run(client, run_id, record, cell_dir)
    return run_id


# --------------------------------------------------------------------------------------------- 3: mirror


def mirror_grid(info: dict, cells: list[tuple[dict, Path]], artifacts: list[Path], grid: str) -> dict:
    """Give every cell of the grid exactly one complete run in the grid's experiment; attach `artifacts` to
    the parent run. Returns the ledger {cell name: run id}."""
    client = _client(info["uri"])
    existing = {run.info.run_id: run for run in _all_cell_runs(client, info["experiment_id"])}
    ledger = {}
    for coordinates, record_path in cells:
        cell_dir = record_path.parent
        record = json.loads(record_path.read_text())
        state_path = cell_dir / "tracking.json"
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            state = {}
        entry = state.get(info["store"], {})
        run_id = entry.get("run_id") if entry.get("run_id") in existing else None
        if run_id is None or not entry.get("complete"):
            logged = entry.get("logged_epochs", 0) if run_id else 0
            run_id = _retry(functools.partial(log_from_record, client, info, record, cell_dir, run_id, logged, grid))
            state[info["store"]] = {"run_id": run_id, "experiment": info["experiment"], "complete": True,
                                    "logged_epochs": record["epochs_run"]}
            write_json(state_path, state)
        ledger[cell_name(coordinates)] = run_id
    for path in artifacts:
        if Path(path).exists():
            _retry(lambda: client.log_artifact(info["parent_run_id"], str(path)))  # noqa: B023
    client.set_terminated(info["parent_run_id"], "FINISHED")
    return ledger


def _all_cell_runs(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string="tags.kind = 'cell'", max_results=1000,
                                  page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs
