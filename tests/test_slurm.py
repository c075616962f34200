"""The grid through workflow/profiles/slurm on a real one-node SLURM cluster (Debian's slurm-wlm).

The cluster is started by tests/slurm/start_cluster.sh on 127.0.0.1; there is no accounting
database, so job status comes from squeue. Skips, with the reason, where it cannot start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_repo, snakemake, write_config

pytestmark = pytest.mark.slow

SCRIPTS = REPO / "tests" / "slurm"
GRID = {"grid": "slurm", "losses": ["softmax_ce", "cosine"], "samples_per_class": [5], "seeds": [0, 1],
        "device": "cpu", "seeds_per_job": 1}  # one sbatch array task per cell


def _ensure_slurm() -> None:
    if shutil.which("sbatch") and shutil.which("slurmctld") and shutil.which("munged"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and cannot be (needs root and apt-get for slurm-wlm, munge)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]):
        if subprocess.run(command, env=env, capture_output=True).returncode != 0:
            pytest.skip(f"could not install SLURM: {' '.join(command)} failed")


@pytest.fixture
def cluster(tmp_path: Path):
    _ensure_slurm()
    where = tmp_path / "slurm"
    started = subprocess.run([str(SCRIPTS / "start_cluster.sh"), str(where)], capture_output=True, text=True)
    if started.returncode != 0:
        subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(where)])
        pytest.skip(f"the one-node SLURM cluster did not start: {started.stderr.strip()[-300:]}")
    yield where
    subprocess.run(["scancel", "--user", "root"], capture_output=True)
    subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(where)])


def grid_config(repo: Path) -> Path:
    return write_config(repo, "slurm", epochs=1, **GRID)


def site_profile(repo: Path) -> Path:
    """The shipped profile with the edits its comments ask a user to make, for this test cluster."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "debug"
    del profile["default-resources"]["slurm_account"]
    profile["slurm-no-account"] = True
    for resources in profile["set-resources"].values():
        resources["mem_mb"] = 500  # the test node offers half the machine's memory
    # a local cluster answers at once; the defaults wait tens of seconds between status checks
    profile["slurm-init-seconds-before-status-checks"] = 1
    profile["seconds-between-status-checks"] = 2
    folder = repo / "site-profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_grid_through_slurm_equals_local_run(cluster: Path, tmp_path: Path) -> None:
    on_slurm = copy_repo(tmp_path / "slurm-repo")
    result = snakemake(on_slurm, "--workflow-profile", str(site_profile(on_slurm)),
                       "--configfile", str(grid_config(on_slurm)))
    output = result.stdout + result.stderr
    assert "Submitted array job" in output  # the four cells went out as one sbatch array
    jobs = subprocess.run(["squeue", "-t", "all", "-h", "-o", "%i %T"], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    finished = [line for line in jobs if line.endswith("COMPLETED")]
    assert len(finished) >= 7, jobs  # prepare, tracking, 4 array tasks, aggregate

    local = copy_repo(tmp_path / "local-repo")
    snakemake(local, "--cores", "2", "--configfile", str(grid_config(local)))
    for suffix in ("csv", "md"):
        assert (on_slurm / f"results/tables/slurm.{suffix}").read_text() == \
               (local / f"results/tables/slurm.{suffix}").read_text()
