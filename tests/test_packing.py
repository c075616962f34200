"""Several seeds in one process (`seeds_per_job`): same results as one cell per process, one output and
one MLflow run per cell, and a preempted pack neither retrains nor relogs the cells it had finished."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, snakemake, write_config

from benchmark.config import cell_settings, load_config, seed_groups

pytestmark = pytest.mark.slow


def settings(epochs: int, steps: int | str = "auto") -> dict:
    value = cell_settings(load_config(REPO / "config" / "config.yaml"), "digits", "cosine")
    value["train"].update(epochs=epochs, steps_per_epoch=steps)
    return value


def train(data: Path, seeds: list[int], outs: list[Path], cell_settings: dict, *extra: str,
          env: dict | None = None, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, "-m", "benchmark", "train", "--dataset", "digits", "--loss", "cosine", "--spc", "5",
               "--seed", *map(str, seeds), "--settings", json.dumps(cell_settings), "--data", str(data),
               "--out", *map(str, outs), "--device", "cpu", *extra]
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=env, text=True, **popen)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)


def result(path: Path) -> dict:
    metrics = json.loads(path.read_text())
    return {k: metrics[k] for k in ("cell", "status", "test_accuracy", "test_balanced_accuracy", "curves")}


def test_seed_groups_split_the_seeds_in_order() -> None:
    assert seed_groups({"seeds": [0, 1, 2, 3, 4]}) == [None]
    assert seed_groups({"seeds": [0, 1, 2, 3, 4], "seeds_per_job": 2}) == [[0, 1], [2, 3], [4]]
    assert seed_groups({"seeds": [7, 3], "seeds_per_job": 5}) == [[7, 3]]


def test_a_pack_gives_each_cell_what_its_own_process_gives(digits: Path, tmp_path: Path) -> None:
    value = settings(epochs=2)
    alone = [tmp_path / f"alone{s}.json" for s in (0, 1)]
    for seed, out in zip((0, 1), alone, strict=True):
        assert train(digits, [seed], [out], value).returncode == 0
    packed = [tmp_path / f"pack{s}.json" for s in (0, 1)]
    run = train(digits, [0, 1], packed, value, "--checkpoint", *(str(tmp_path / f"ckpt{s}.pt") for s in (0, 1)))
    assert run.returncode == 0, run.stderr
    for one, other in zip(alone, packed, strict=True):
        assert result(one) == result(other)  # bit-identical on CPU
    assert result(packed[0]) != result(packed[1])
    assert not list(tmp_path.glob("ckpt*.pt"))  # a finished pack leaves no checkpoints behind


def test_mismatched_seeds_and_outputs_give_one_error_line(digits: Path, tmp_path: Path) -> None:
    run = train(digits, [0, 1], [tmp_path / "only.json"], settings(epochs=1))
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "error: train got 2 --seed, 1 --out and 2 --checkpoint values; give one of each per cell, in the same order"
    ]
    assert not (tmp_path / "only.json").exists()


def test_a_preempted_pack_keeps_its_finished_cells(digits: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    tracking = tmp_path / "tracking.json"
    subprocess.run([sys.executable, "-m", "benchmark", "tracking-init", "--grid", "pack", "--out", str(tracking)],
                   cwd=REPO, env=env, check=True, capture_output=True)
    value = settings(epochs=3, steps=100)
    outs = [tmp_path / f"seed{s}" / "metrics.json" for s in (0, 1)]
    saved = [tmp_path / f"seed{s}" / "checkpoint.pt" for s in (0, 1)]
    extra = ("--checkpoint", *map(str, saved), "--tracking", str(tracking))
    first = train(digits, [0, 1], outs, value, *extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in first.stdout:  # the first cell is done and the second has begun: stop the pack
        if "seed1: epoch 1/3" in line:
            break
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 75, err
    finished = json.loads(outs[0].read_text())
    outs[0].unlink()  # what Snakemake does to the outputs of a failed job
    assert saved[0].exists() and saved[1].exists() and not outs[1].exists()

    second = train(digits, [0, 1], outs, value, *extra, env=env)
    assert second.returncode == 0, second.stderr
    assert "seed0: epoch" not in second.stdout  # restored, not trained again
    assert "seed1: resuming from" in second.stdout
    assert json.loads(outs[0].read_text()) == finished
    assert not saved[0].exists() and not saved[1].exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("pack")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")
    by_cell = {run.data.tags["cell"]: run.info.run_id for run in runs}
    assert len(runs) == 2 and by_cell == {
        "digits/cosine/spc5/seed0": finished["mlflow_run_id"],
        "digits/cosine/spc5/seed1": json.loads(outs[1].read_text())["mlflow_run_id"],
    }


def test_packed_workflow_writes_one_output_and_one_run_per_cell(repo_copy: Path) -> None:
    config = write_config(repo_copy, "packed", epochs=1, losses=["softmax_ce", "cosine"], samples_per_class=[5],
                          seeds=[0, 1, 2], seeds_per_job=2)
    dry = snakemake(repo_copy, "-n", "--cores", "2", "--configfile", str(config))
    assert "train_seeds_0_1 " in dry.stdout and "train_seeds_2 " in dry.stdout
    snakemake(repo_copy, "--cores", "2", "--configfile", str(config))
    cells = sorted(p.relative_to(repo_copy).as_posix() for p in repo_copy.glob("results/cells/**/metrics.json"))
    expected = [f"digits/{loss}/spc5/seed{s}" for loss in ("cosine", "softmax_ce") for s in (0, 1, 2)]
    assert cells == [f"results/cells/{key}/metrics.json" for key in expected]
    assert not list(repo_copy.glob("results/cells/**/checkpoint.pt"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(load_config(config)["grid"])
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")
    assert sorted(run.data.tags["cell"] for run in runs) == expected
    assert "Nothing to be done" in snakemake(repo_copy, "-n", "--configfile", str(config)).stdout

    # a change to one loss's settings reruns only that loss's packs
    changed = yaml.safe_load(config.read_text())
    changed["dataset_settings"]["digits"]["train"]["lr"]["cosine"] = 0.25
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    dry = snakemake(repo_copy, "-n", "--configfile", str(config)).stdout
    jobs = re.findall(r"^rule (train_\w+):\n(?:.*\n)*?\s+wildcards: .*loss=(\w+)", dry, flags=re.MULTILINE)
    assert sorted(jobs) == [("train_seeds_0_1", "cosine"), ("train_seeds_2", "cosine")], dry
