"""Mistakes a user can make reach them as one line naming the thing and the fix, before any job where
possible, and lose nothing (issue 10, point 8 and 9)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, records, snakemake, workflow_env, write_config

from benchmark.checkpoint import Checkpoints
from benchmark.io import write_json


def cli(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # no traceback
    return lines[0]


def test_validate_accepts_the_overlays_the_workflow_accepts(tmp_path: Path) -> None:
    overlay = tmp_path / "my_grid.yaml"
    overlay.write_text(yaml.safe_dump({"grid": "mine", "methods": ["cosine"], "samples_per_class": [5]}))
    result = cli("validate", str(overlay))
    assert result.returncode == 0, result.stderr
    assert "valid, 3 cells" in result.stdout  # merged over config/config.yaml: its 3 seeds
    assert cli("validate", "config/paper.yaml", "config/paper_table3.yaml").returncode == 0


def test_a_typo_in_a_learning_rate_map_stops_with_one_line(tmp_path: Path) -> None:
    overlay = tmp_path / "typo.yaml"
    overlay.write_text(yaml.safe_dump({"dataset_settings": {"digits": {"model": "small_cnn", "train": {
        "lr": {"cosin": 0.5, "default": 0.05}}}}}))
    line = one_line(cli("validate", str(overlay)))
    assert line.startswith("config error at 'dataset_settings.digits.train.lr': 'cosin' is not a method")


@pytest.mark.slow  # the real CLI in a process
def test_missing_prepared_data_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    from benchmark.config import load_config
    from benchmark.grid import Grid

    spec = Grid(load_config(REPO / "config/config.yaml")).packs[0].spec()
    spec["data"] = str(tmp_path / "nowhere" / "digits")
    spec["folder"] = str(tmp_path / "cells")
    line = one_line(cli("train", "--pack", json.dumps(spec), "--marker", str(tmp_path / "m.pack"), "--device", "cpu",
                        "--threads", "1", "--eval-batch-size", "64", "--cells-per-gpu", "1", "--grid", "g"))
    assert line.startswith("data error: prepared data not found at ") and "nowhere/digits" in line
    assert "dvc repro" in line


def test_a_truncated_checkpoint_is_set_aside_and_the_cell_starts_afresh(tmp_path: Path, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    assert Checkpoints(path, "abc").load() is None
    assert not path.exists() and (tmp_path / "checkpoint.pt.stale").read_bytes() == b"PK\x03\x04 truncated"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be read" in err[0] and "starts afresh" in err[0]


def test_a_checkpoint_of_other_code_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    Checkpoints(path, "made-by-old-code").save({"fingerprint": "made-by-old-code", "progress": {}})
    assert Checkpoints(path, "this-code").load() is None
    assert (tmp_path / "checkpoint.pt.stale").exists()


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        write_json(tmp_path / "shared.json", {"a": 1})
        Checkpoints(tmp_path / "c.pt", "x").save({"fingerprint": "x"})
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o664


pytestmark_slow = pytest.mark.slow


@pytestmark_slow
def test_cuda_without_a_gpu_stops_before_any_job(repo_copy: Path) -> None:
    if Path("/proc/driver/nvidia/gpus").is_dir():
        pytest.skip("this machine has an NVIDIA GPU")
    config = write_config(repo_copy, "gpu", device="cuda")
    result = snakemake(repo_copy, "-n", "--configfile", str(config), check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "config error" in line]
    assert result.returncode != 0 and len(lines) == 1
    assert lines[0].startswith("config error at 'device': 'cuda' but this machine has no NVIDIA GPU")


@pytestmark_slow
def test_a_dead_tracking_server_stops_the_run_in_seconds_with_one_line(repo: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    config = write_config(repo, "dead", grid="dead", samples_per_class=[5], seeds=[0], epochs=1)
    env = {**workflow_env(repo), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)],
                            cwd=repo, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("tracking error")]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "tracking=false" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not records(repo)  # no job started
    assert elapsed < 120  # not MLflow's four minutes of retries


@pytestmark_slow
def test_broken_and_misplaced_records_are_refused_by_the_aggregate_with_one_line(repo: Path) -> None:
    config = write_config(repo, "agg", grid="agg", methods=["softmax_ce", "cosine"], samples_per_class=[5],
                          seeds=[0], epochs=1, tracking=False)
    snakemake(repo, "--cores", "2", "--configfile", str(config))
    cells = sorted(records(repo))
    env = workflow_env(repo)
    softmax, cosine = (repo / c for c in cells if "/cosine/" not in c), (repo / c for c in cells if "/cosine/" in c)
    softmax, cosine = next(softmax), next(cosine)
    kept = cosine.read_bytes()
    # a result copied into another cell's folder
    shutil.copy(softmax, cosine)
    line = one_line(cli("aggregate", "--config", str(config), cwd=repo, env=env))
    assert line.startswith(f"error: {cosine.relative_to(repo)} does not match its cell") and "softmax_ce" in line
    # a garbage record
    cosine.write_text("{not json")
    line = one_line(cli("aggregate", "--config", str(config), cwd=repo, env=env))
    assert line.startswith(f"error: {cosine.relative_to(repo)} is not a readable cell record")
    cosine.write_bytes(kept)
    assert cli("aggregate", "--config", str(config), cwd=repo, env=env).returncode == 0
