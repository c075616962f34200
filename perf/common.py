"""Helpers shared by the perf parts: timed subprocesses, scratch folders, grids."""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from perf.repo_copy import REPO


class PerfError(RuntimeError):
    """A measurement could not be taken; the message is one line saying which and why."""


def scratch_root(min_free: int = 1 << 30) -> str | None:
    """A tmpfs folder for many small scratch files where there is one, else None (the system's temp folder).

    Deleting 10,000 files on this project's disk (ext4 mounted with discard) takes about 25 s, longer
    than what is measured; reading them back costs the same either way (they are in the page cache).
    """
    shm = Path("/dev/shm")
    try:
        usable = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > min_free
    except OSError:
        usable = False
    return str(shm) if usable else None


def repo_on_path(env: dict[str, str] | None) -> dict[str, str]:
    """`env` (default: this process's) with the repository first on PYTHONPATH.

    The parts run `python -m benchmark ...` in scratch folders, where `benchmark` would be whatever
    copy is installed; the figures are for this repository's code, the commit the JSON records.
    A process started in a copy of the repository still imports the copy (its folder comes first).
    """
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_cpu(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run `cmd`; return (wall seconds, CPU seconds of it and its children, stdout+stderr).

    The CPU time (user + system) is what the command costs whatever else the machine runs; on a shared
    machine the wall time also counts the waits for a core. A non-zero exit raises PerfError with the
    output's tail.
    """
    env = repo_on_path(env)
    cpu = _children_cpu_s()
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cpu = _children_cpu_s() - cpu
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-5:])
        raise PerfError(f"`{' '.join(cmd[:4])} ...` exited with {result.returncode}: {tail}")
    return seconds, cpu, output


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run `cmd`; return (wall seconds, stdout+stderr). A non-zero exit raises PerfError with the output's tail."""
    seconds, _, output = timed_cpu(cmd, cwd, env)
    return seconds, output


@contextlib.contextmanager
def timed_calls(targets: list[tuple[object, str]]) -> Iterator[dict[str, list[float]]]:
    """Time every call of each `owner.name` (a module's function or a class's method) while the block runs.

    Yields {name: [seconds of each call]}; the originals are put back on exit. This is how a part times
    steps inside the product without a timer in the product's code.
    """
    calls: dict[str, list[float]] = {name: [] for _, name in targets}
    originals = [(owner, name, getattr(owner, name)) for owner, name in targets]

    def timing(name: str, original):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                calls[name].append(time.perf_counter() - start)
        return wrapper

    for owner, name, original in originals:
        setattr(owner, name, timing(name, original))
    try:
        yield calls
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


STORE_TIMEOUT_S = 120  # tracking-init's limit for a new SQLite store; its default (20 s) can pass on a loaded machine


def tracking_init(grid: str, config: dict, out: Path, cwd: Path, env: dict[str, str]) -> float:
    """Create the MLflow store and the grid's experiment as the workflow's onstart does; return the seconds."""
    import json

    from benchmark.grid import table_config
    from perf.repo_copy import PYTHON

    seconds, _ = timed([PYTHON, "-m", "benchmark", "tracking-init", "--grid", grid, "--config-json",
                        json.dumps(table_config(config), sort_keys=True), "--out", str(out),
                        "--timeout", str(STORE_TIMEOUT_S)], cwd, env)
    return seconds


def stats(values: list[float]) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
            "runs_s": [round(v, 4) for v in values]}


def synthetic_grid(seeds: int, grid: str = "perf_synthetic") -> dict:
    """The default grid (config/config.yaml) with `seeds` seeds: 25 x seeds cells on digits."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["grid"] = grid
    config["seeds"] = list(range(seeds))
    return config


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
