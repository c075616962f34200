"""Helpers shared by the perf parts: a scratch copy of the repository, timed subprocesses, grids."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


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


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def copy_repo(dest: Path) -> Path:
    """Copy the files git sees (tracked and untracked-not-ignored) into a fresh git repository at `dest`.

    The same approach as the tests' fixture: the copy has the working tree's code and config but
    none of its results, data or workflow state.
    """
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=perf", "-c", "user.email=perf@example.invalid", "commit", "-qm", "copy")
    return dest


def workflow_env(repo: Path) -> dict[str, str]:
    """Environment of a workflow run in `repo`: this interpreter's bin first, a private MLflow store."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{repo / 'mlflow.db'}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run `cmd`; return (wall seconds, stdout+stderr). A non-zero exit raises PerfError with the output's tail."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-5:])
        raise PerfError(f"`{' '.join(cmd[:4])} ...` exited with {result.returncode}: {tail}")
    return seconds, output


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
