"""Shared fixtures: a temporary copy of the repository to run real workflows in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/fixtures/ helpers import as `fixtures.x`


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def copy_repo(dest: Path) -> Path:
    """Copy the files git sees (tracked and untracked-not-ignored) into a fresh git repository."""
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-qm", "copy")
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


def workflow_env(repo: Path) -> dict[str, str]:
    """The environment of a workflow run: this interpreter's bin first, a private MLflow store."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{repo / 'mlflow.db'}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def snakemake(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=repo, env=workflow_env(repo),
        capture_output=True, text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_config(repo: Path, name: str, epochs: int | None = None, **overrides) -> Path:
    """config/<name>.yaml: the default config with `overrides` applied at the top level (and train.epochs)."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.update(overrides)
    if epochs is not None:
        config["train"]["epochs"] = epochs
    path = repo / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
