"""Shared fixtures: a temporary copy of the repository to run real workflows in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# One copy of these helpers, shared with the speed harness (perf/ beside benchmark/, outside the package).
from perf.repo_copy import copy_repo, workflow_env

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/fixtures/ helpers import as `fixtures.x`


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """The digits dataset prepared once per session by the real `prepare` verb (outside any repo copy)."""
    out = tmp_path_factory.mktemp("data") / "digits"
    subprocess.run([sys.executable, "-m", "benchmark", "prepare", "digits", "--out", str(out)], cwd=REPO,
                   check=True, capture_output=True)
    return out


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


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
