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
EPOCHS = 40

# One cell process's logging: a cell run with two per-epoch curves, as benchmark.train produces.
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


def log_concurrently(uri: str, folder: Path) -> tuple[list[str], float]:
    """Initialise the experiment, start 16 logging processes at once; return their run ids and wall time."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", "concurrency", "--out",
                    str(folder / "tracking.json")], cwd=REPO, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(EPOCHS)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(PROCESSES)]
    outputs = [w.communicate(timeout=300) for w in workers]
    elapsed = time.perf_counter() - start
    failures = [err for w, (_, err) in zip(workers, outputs, strict=True) if w.returncode != 0]
    if failures:
        raise RuntimeError(f"{len(failures)} of {PROCESSES} logging processes failed: {failures[0][-2000:]}")
    return [out.strip().splitlines()[-1] for out, _ in outputs], elapsed


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
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
