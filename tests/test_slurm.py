"""The grid through workflow/profiles/slurm on a real one-node SLURM cluster (Debian's slurm-wlm + munge).

The cluster is started by tests/slurm/start_cluster.sh on 127.0.0.1 (.ci/run installs the packages; this
test installs nothing and skips, with the reason, where the cluster cannot start). There is no accounting
database, so the test's site profile asks for squeue, as the shipped profile says to. The test cancels only
the jobs it submitted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_repo, snakemake, write_config

pytestmark = pytest.mark.slow

SCRIPTS = REPO / "tests" / "slurm"
GRID = {"grid": "slurm", "methods": ["softmax_ce", "cosine"], "samples_per_class": [5], "seeds": [0, 1, 2],
        "device": "cpu", "seeds_per_job": 2, "tracking": False}  # packs of 2 and 1 cells: one rule `train`
RUNTIME, MEM = 17, 456  # what the site profile gives training jobs (minutes, MB): checked on every sbatch


@pytest.fixture
def cluster(tmp_path: Path):
    if not (shutil.which("sbatch") and shutil.which("slurmctld") and shutil.which("munged")):
        pytest.skip("SLURM is not installed (Debian packages slurm-wlm and munge; .ci/run installs them)")
    where = tmp_path / "slurm"
    started = subprocess.run([str(SCRIPTS / "start_cluster.sh"), str(where)], capture_output=True, text=True)
    if started.returncode != 0:
        subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(where)])
        pytest.skip(f"the one-node SLURM cluster did not start: {started.stderr.strip()[-300:]}")
    yield where
    subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(where)])  # stops its own daemons: its jobs go too


def site_profile(repo: Path) -> Path:
    """The shipped profile with the edits its comments ask a user to make, for this test cluster."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "debug"
    del profile["default-resources"]["slurm_account"]
    profile["slurm-no-account"] = True
    profile["slurm-status-command"] = "squeue"  # no accounting database on the test cluster
    profile["config"] = ["device=cpu"]
    profile["set-resources"]["train"] = {"runtime": RUNTIME, "mem_mb": MEM}
    # a local cluster answers at once; the defaults wait tens of seconds between status checks
    profile["slurm-init-seconds-before-status-checks"] = 1
    profile["seconds-between-status-checks"] = 2
    folder = repo / "site-profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def jobs_of(where: Path) -> list[dict]:
    """Every job the test cluster ran: name, comment (the rule), time limit, memory."""
    out = subprocess.run(["squeue", "-t", "all", "-h", "-o", "%i|%k|%l|%m|%T"], capture_output=True, text=True,
                         check=True).stdout
    rows = [dict(zip(("id", "comment", "limit", "mem", "state"), line.split("|"), strict=True))
            for line in out.splitlines() if line.strip()]
    return rows


def test_a_packed_grid_through_slurm_equals_a_local_run(cluster: Path, tmp_path: Path) -> None:
    on_slurm = copy_repo(tmp_path / "slurm-repo")
    result = snakemake(on_slurm, "--workflow-profile", str(site_profile(on_slurm)), "--configfile",
                       str(write_config(on_slurm, "slurm", epochs=1, **GRID)))
    output = result.stdout + result.stderr
    assert "Submitted" in output
    jobs = jobs_of(cluster)
    rules = [job["comment"].split("_wildcards")[0].removeprefix("rule_") for job in jobs]
    assert rules and set(rules) == {"train"}, jobs  # light rules ran on the submitting node, never via sbatch
    assert len(rules) == 4  # 2 methods x packs [0, 1] and [2]
    minutes = {job["limit"] for job in jobs}
    assert minutes == {f"{RUNTIME}:00"}, jobs  # the profile's train resources reach every pack, whatever its size
    # the plugin adds a small margin to the memory it asks for
    assert all(MEM <= int(job["mem"].removesuffix("M")) <= 1.1 * MEM for job in jobs), jobs
    assert {job["state"] for job in jobs} == {"COMPLETED"}, jobs

    local = copy_repo(tmp_path / "local-repo")
    snakemake(local, "--cores", "2", "--configfile", str(write_config(local, "slurm", epochs=1, **GRID)))
    for suffix in ("csv", "md"):
        assert (on_slurm / f"results/tables/slurm.{suffix}").read_text() == \
               (local / f"results/tables/slurm.{suffix}").read_text()
