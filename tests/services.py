"""Real tracking back ends started by tests and benchmarks: an `mlflow server`, a PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")
REPO = Path(__file__).resolve().parent.parent
PROCESSES = 16
EPOCHS = 10  # each flushed on its own (BENCHMARK_TRACKING_FLUSH_S=0): 10 rounds of 16 concurrent batches

# One process per cell, as a grid's jobs are: each tells the store what a real cell does, through
# benchmark.tracking.CellTracker (start, one flush per epoch, then the record and its artefacts). MLflow is
# imported once and the cells are forked from that process, so the 16 start logging within milliseconds of
# each other (16 imports of MLflow would stagger them by seconds on a small machine, and cost ~80 CPU s).
# The grid's experiment is created first, by a forked process of its own (what tracking-init does), so
# that no process forks with a store open: each cell opens its own connection.
LAUNCHER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    # imported once, before the fork (the stores' modules too: MLflow imports them when a client first
    # opens a store, 3 s of SQLAlchemy); no store is opened here, so no connection is shared by the cells
    import mlflow.entities, mlflow.tracking, mlflow.store.tracking.rest_store  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from benchmark.tracking import CellTracker

    store, folder, processes, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    def forked(action):  # run `action` in a child process; its pid (the child never returns here)
        pid = os.fork()
        if pid == 0:
            try:
                action()
                code = 0
            except BaseException as error:  # noqa: BLE001 (the child must not return into the caller)
                code = error.code if isinstance(error, SystemExit) else 1
                if not isinstance(error, SystemExit):
                    print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
            os._exit(code)
        return pid

    def init():
        from benchmark.tracking import init_grid
        store.write_text(json.dumps(init_grid("concurrency", {"grid": "concurrency"})))

    if os.waitpid(forked(init), 0)[1] != 0:
        sys.exit("creating the grid's experiment failed")
    context = {"grid": "concurrency", "tracking": json.loads(store.read_text())}

    def cell(i):
        cell_dir = folder / f"seed{i}"
        cell_dir.mkdir(parents=True)
        coordinates = {"dataset": "digits", "method": "cosine", "samples_per_class": 5, "split": 0, "seed": i}
        identity = {"settings": "0123456789", "code": "c0de", "data": "da7a"}
        tracker = CellTracker(context, cell_dir, coordinates, {"train": {"lr": 0.1, "epochs": epochs}}, identity)
        for epoch in range(1, epochs + 1):
            metrics = {"train_loss": 1.0 / epoch + i, "lr": 0.1, "epoch_s": 0.01}
            tracker.epoch(None, SimpleNamespace(epoch=epoch), metrics)
        record = {"cell": coordinates, "status": "ok", "test_accuracy": 0.5 + i / 100, "test_balanced_accuracy": 0.5,
                  "wall_time_s": 1.0, "epochs_run": epochs, "identity": identity}
        (cell_dir / "metrics.json").write_text(json.dumps(record))
        (cell_dir / "cell.log").write_text(f"cell {i}\\n")
        tracker.finished(record, cell_dir / "cell.log")
        if tracker.info is None:  # the tracker swallowed a store failure (its line is on stderr)
            raise SystemExit(1)
        (cell_dir / "run_id").write_text(tracker.run_id)  # not stdout: MLflow's lines there interleave with it

    started = time.perf_counter()
    children = [forked(lambda i=i: cell(i)) for i in range(processes)]
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    print("elapsed", time.perf_counter() - started, flush=True)
    sys.exit(f"{len(failed)} of {processes} logging processes failed" if failed else 0)
""")


def log_concurrently(uri: str, folder: Path) -> tuple[list[str], float]:
    """Create the grid's experiment, then fork 16 cell processes logging at once: their run ids, and the wall
    time from the first fork to the last cell's end."""
    folder.mkdir(parents=True, exist_ok=True)
    # cwd: a store without an artefact location keeps artefacts under ./mlruns, which must not be the repo
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BENCHMARK_TRACKING_FLUSH_S": "0", "PYTHONPATH": str(REPO)}
    work = Path(tempfile.mkdtemp(prefix="cells-", dir=folder))
    result = subprocess.run([sys.executable, "-c", LAUNCHER, str(work / "store.json"), str(work), str(PROCESSES),
                             str(EPOCHS)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{result.stdout[-500:]}{result.stderr[-2000:]}")
    elapsed = next(float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("elapsed "))
    return [path.read_text() for path in sorted(work.glob("seed*/run_id"))], elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:
            if reply.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not answer within {timeout_s} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def mlflow_server(folder: Path, backend_uri: str | None = None) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with its own store; yields the http:// tracking URI."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "server.log"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", backend_uri or f"sqlite:///{folder / 'server.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--workers", "2"]
    # MLflow 3's job runner (seven more processes, for its GenAI jobs) has nothing to do with tracking; on two
    # cores their start-up competes with the runs under test for the first 10-20 s.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def postgres_available() -> str | None:
    """None when a PostgreSQL server can be started here, else the reason it cannot."""
    if not PG_BIN.is_dir() or not list(PG_BIN.glob("*/bin/initdb")):
        return "PostgreSQL's server binaries are not installed (Debian package postgresql)"
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        return "starting PostgreSQL needs root (to run it as the postgres user)"
    return None


@contextlib.contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with a database `mlflow`; yields its SQLAlchemy URI."""
    bin_dir = sorted(PG_BIN.glob("*/bin"))[-1]
    # Not under `folder`: pytest's temporary folders are private to root, and the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="pgdata-"))
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                    str(data / "server.log"), "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_postgres, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                        "postgres", "mlflow"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
