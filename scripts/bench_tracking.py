"""Time 16 cell processes logging to MLflow at once, per tracking back end.

    .venv/bin/python scripts/bench_tracking.py

One process imports MLflow and forks 16 cells; each opens the store and logs one cell run through
benchmark.tracking.CellTracker (tests/services.py: EPOCHS epochs of two curves, each flushed); the figure
is the wall time from starting that process to the last cell finishing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import PROCESSES, log_concurrently, mlflow_server, postgres, postgres_available  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = []
        _, seconds = log_concurrently(f"sqlite:///{folder / 'mlflow.db'}", folder)
        rows.append(("SQLite file", seconds))
        with mlflow_server(folder / "server") as uri:
            rows.append(("mlflow server (HTTP, SQLite behind it)", log_concurrently(uri, folder)[1]))
        if postgres_available() is None:
            with postgres(folder / "pg") as uri:
                rows.append(("PostgreSQL", log_concurrently(uri, folder)[1]))
        print(f"| back end | {PROCESSES} processes, wall time (s) |\n|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
