"""Real tracking back ends started by tests and benchmarks: an `mlflow server`, a PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")


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
