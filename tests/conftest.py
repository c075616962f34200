"""Shared fixtures: a temporary copy of the repository to run real workflows in."""

from __future__ import annotations

import shutil
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
    """The digits dataset prepared once per session by the real `prepare` verb (outside any repo copy), in this
    process (a fresh interpreter would cost each test worker another 2 s of imports)."""
    from benchmark.__main__ import main

    out = tmp_path_factory.mktemp("data") / "digits"
    main(["prepare", "digits", "--out", str(out)])
    return out


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def prepared_repo(tmp_path_factory) -> Path:
    """A copy of the repository whose digits data the workflow has prepared (through DVC), once per session."""
    repo = copy_repo(tmp_path_factory.mktemp("prepared") / "repo")
    snakemake(repo, "--cores", "1", "data/prepared/digits.json")
    return repo


def copy_workflow(source: Path, dest: Path) -> Path:
    """A copy of a repository copy a workflow ran in: every file with its times, so Snakemake finds the copy
    exactly as up to date as `source`."""
    return Path(shutil.copytree(source, dest, symlinks=True))


@pytest.fixture
def repo(prepared_repo: Path, tmp_path: Path) -> Path:
    """A private copy of `prepared_repo` (code, git history, prepared digits, DVC and Snakemake state)."""
    return copy_workflow(prepared_repo, tmp_path / "repo")


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


def records(repo: Path, root: str = "results/cells") -> dict[str, tuple[int, str]]:
    """Every metrics.json under `root`: relative path -> (mtime_ns, sha256)."""
    import hashlib

    return {str(p.relative_to(repo)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted((repo / root).rglob("metrics.json"))}


def jobs(dry_run_output: str, rule: str = "train") -> int:
    """How many jobs of `rule` a dry run's job statistics list (0 when nothing is to be done)."""
    for line in dry_run_output.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == rule and fields[1].isdigit():
            return int(fields[1])
    return 0


# The longest real-component modules (40-60 s a test on 2 cores), started first so that none is left to run
# alone at the end. Only the order changes: a module missing here runs with the other slow tests.
LONGEST_FIRST = ["tests/test_teachers_workflow.py", "tests/test_slurm.py", "perf/tests/test_perf.py",
                 "tests/test_integrity.py", "tests/test_data_workflow.py", "tests/test_tracking.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-component tests first, the longest modules first among them, each module's tests in their order.
    With workers (-n auto, --dist worksteal: the first worker starts at the top of this order, an idle one takes
    the end of another's queue) the long ones start early and the many short tests fill the end, instead of one
    long workflow test running alone last."""
    def rank(item: pytest.Item) -> tuple[bool, int]:
        if item.get_closest_marker("slow") is None:
            return True, 0
        module = item.nodeid.split("::", 1)[0]
        return False, LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
