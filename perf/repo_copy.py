"""A scratch copy of the repository, and the environment of a workflow run in it.

Shared by the tests (tests/conftest.py) and the harness's dag and default_grid parts, so that
both run the workflow the same way; it lives here, outside the product package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def copy_repo(dest: Path) -> Path:
    """Copy the files git sees (tracked and untracked-not-ignored) into a fresh git repository at `dest`.

    The copy has the working tree's code and config but none of its results, data or workflow state.
    """
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        path = REPO / name
        if path.is_file():  # ls-files lists deleted-but-tracked files too
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
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
